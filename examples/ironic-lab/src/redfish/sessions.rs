//! SessionService: sessions opened with a user name and password, used with `X-Auth-Token`.

use super::*;

pub(super) async fn session_service(State(bmc): State<Shared>, headers: HeaderMap) -> RfResult {
    bmc.service_request(&headers).await?;
    Ok(doc(resources::session_service(SESSION_TIMEOUT.as_secs())))
}

pub(super) async fn sessions(State(bmc): State<Shared>, headers: HeaderMap) -> RfResult {
    bmc.service_request(&headers).await?;
    let members = {
        let sessions = bmc.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .values()
            .map(|s| format!("/redfish/v1/SessionService/Sessions/{}", s.id))
            .collect()
    };
    Ok(doc(resources::collection(
        "SessionCollection",
        "/redfish/v1/SessionService/Sessions",
        "Session Collection",
        members,
    )))
}

pub(super) fn random_token(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub(super) async fn create_session(State(bmc): State<Shared>, body: Bytes) -> RfResult {
    bmc.inject(None).await?;
    let body = parse_body(&body)?;
    let (Some(user), Some(pass)) = (
        string_prop(&body, "UserName")?,
        string_prop(&body, "Password")?,
    ) else {
        return Err(RfError::BadRequest {
            id: "PropertyMissing",
            message: "The properties UserName and Password are required to create a session."
                .into(),
        });
    };
    let systems: Vec<String> = bmc
        .systems
        .values()
        .filter(|s| s.check_credentials(user, pass))
        .map(|s| s.spec().name.clone())
        .collect();
    if systems.is_empty() {
        return Err(RfError::Unauthorized);
    }
    let id = random_token(12);
    let token = random_token(24);
    let location = format!("/redfish/v1/SessionService/Sessions/{id}");
    let body = resources::session(&id, user);
    {
        let mut sessions = bmc.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| s.last_used.elapsed() < SESSION_TIMEOUT);
        let mut counts = bmc.counts.lock().unwrap_or_else(|e| e.into_inner());
        if bmc.max_sessions.is_some_and(|max| sessions.len() >= max) {
            counts.refused += 1;
            tracing::info!(
                user,
                open = sessions.len(),
                "session limit reached: login refused"
            );
            return Err(RfError::SessionLimit);
        }
        sessions.insert(
            token.clone(),
            Session {
                id,
                user: user.to_string(),
                systems,
                last_used: Instant::now(),
            },
        );
        counts.created += 1;
        counts.peak = counts.peak.max(sessions.len());
    }
    let mut resp = doc(body);
    *resp.status_mut() = StatusCode::CREATED;
    let h = resp.headers_mut();
    if let (Ok(t), Ok(l)) = (
        HeaderValue::from_str(&token),
        HeaderValue::from_str(&location),
    ) {
        h.insert("X-Auth-Token", t);
        h.insert(header::LOCATION, l);
    }
    Ok(resp)
}

pub(super) async fn session(
    State(bmc): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> RfResult {
    bmc.service_request(&headers).await?;
    let sessions = bmc.sessions.lock().unwrap_or_else(|e| e.into_inner());
    sessions
        .values()
        .find(|s| s.id == sid)
        .map(|s| doc(resources::session(&s.id, &s.user)))
        .ok_or_else(|| RfError::NotFound(format!("/redfish/v1/SessionService/Sessions/{sid}")))
}

pub(super) async fn delete_session(
    State(bmc): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> RfResult {
    bmc.service_request(&headers).await?;
    let mut sessions = bmc.sessions.lock().unwrap_or_else(|e| e.into_inner());
    let before = sessions.len();
    sessions.retain(|_, s| s.id != sid);
    if sessions.len() == before {
        return Err(RfError::NotFound(format!(
            "/redfish/v1/SessionService/Sessions/{sid}"
        )));
    }
    bmc.counts.lock().unwrap_or_else(|e| e.into_inner()).deleted += 1;
    Ok(no_content())
}
