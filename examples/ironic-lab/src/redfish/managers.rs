//! Managers (the BMC itself), their virtual CD, and the chassis.

use super::*;

pub(super) async fn managers(State(bmc): State<Shared>, headers: HeaderMap) -> RfResult {
    bmc.service_request(&headers).await?;
    Ok(doc(resources::collection(
        "ManagerCollection",
        "/redfish/v1/Managers",
        "Manager Collection",
        member_paths(&bmc, "/redfish/v1/Managers"),
    )))
}

/// Faults and authentication for a manager (same name as its system).
pub(super) async fn manager_request<'a>(
    bmc: &'a Bmc,
    id: &str,
    headers: &HeaderMap,
) -> Result<&'a SimServer, RfError> {
    bmc.system_request(id, headers).await.map_err(|e| match e {
        RfError::NotFound(_) => RfError::NotFound(format!("/redfish/v1/Managers/{id}")),
        other => other,
    })
}

pub(super) async fn manager(
    State(bmc): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> RfResult {
    let s = manager_request(&bmc, &id, &headers).await?;
    Ok(doc(resources::manager(s)))
}

pub(super) async fn vmedias(
    State(bmc): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> RfResult {
    manager_request(&bmc, &id, &headers).await?;
    let base = format!("/redfish/v1/Managers/{id}/VirtualMedia");
    Ok(doc(resources::collection(
        "VirtualMediaCollection",
        &base,
        "Virtual Media Services",
        vec![format!("{base}/{VMEDIA_ID}")],
    )))
}

pub(super) async fn vmedia_request<'a>(
    bmc: &'a Bmc,
    id: &str,
    dev: &str,
    headers: &HeaderMap,
) -> Result<&'a SimServer, RfError> {
    let s = manager_request(bmc, id, headers).await?;
    if dev != VMEDIA_ID {
        return Err(RfError::NotFound(format!(
            "/redfish/v1/Managers/{id}/VirtualMedia/{dev}"
        )));
    }
    Ok(s)
}

pub(super) async fn vmedia(
    State(bmc): State<Shared>,
    Path((id, dev)): Path<(String, String)>,
    headers: HeaderMap,
) -> RfResult {
    let s = vmedia_request(&bmc, &id, &dev, &headers).await?;
    Ok(doc(resources::virtual_media(s)))
}

pub(super) fn insert_from(s: &SimServer, body: &Map<String, Value>) -> Result<(), RfError> {
    let Some(image) = string_prop(body, "Image")? else {
        return Err(RfError::BadRequest {
            id: "ActionParameterMissing",
            message: "The action VirtualMedia.InsertMedia requires the parameter Image to be present in the request body.".into(),
        });
    };
    if body
        .get("Inserted")
        .is_some_and(|v| v == &Value::Bool(false))
    {
        s.eject_media();
        return Ok(());
    }
    let write_protected = match body.get("WriteProtected") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(RfError::BadRequest {
                id: "ActionParameterValueTypeError",
                message: "The value for the parameter WriteProtected must be a boolean.".into(),
            });
        }
    };
    s.insert_media(image.to_string(), write_protected)?;
    Ok(())
}

/// A real BMC downloads the image it is given: check it can be fetched (from this
/// host only: loopback, or an address of one of its interfaces, e.g. a test
/// network namespace's bridge where a conductor serves its ISOs).
pub(super) async fn check_image(url: &str) -> Result<(), RfError> {
    check_url(
        url,
        "the parameter Image in the action VirtualMedia.InsertMedia",
    )
    .await
}

/// [`check_image`] for any URL the BMC downloads (`what` names where it came from).
pub(super) async fn check_url(url: &str, what: &str) -> Result<(), RfError> {
    let bad = |why: String| RfError::BadRequest {
        id: "ActionParameterValueFormatError",
        message: format!("The value {url} for {what} is invalid: {why}."),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("only http and https images can be inserted".into()));
    }
    let host = parsed
        .host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    // An address can be bound only when it is this host's.
    let local = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || std::net::UdpSocket::bind((ip, 0)).is_ok());
    if !local {
        return Err(bad(
            "the lab BMC only reaches this host's own addresses".into()
        ));
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .danger_accept_invalid_certs(true)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let resp = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| bad(format!("download failed: {e}")))?;
    if !resp.status().is_success() {
        return Err(bad(format!(
            "download failed with HTTP {}",
            resp.status().as_u16()
        )));
    }
    Ok(())
}

pub(super) async fn insert_media(
    State(bmc): State<Shared>,
    Path((id, dev)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RfResult {
    let s = vmedia_request(&bmc, &id, &dev, &headers).await?;
    let body = parse_body(&body)?;
    if let Some(image) = string_prop(&body, "Image")? {
        check_image(image).await?;
    }
    insert_from(s, &body)?;
    Ok(no_content())
}

pub(super) async fn eject_media(
    State(bmc): State<Shared>,
    Path((id, dev)): Path<(String, String)>,
    headers: HeaderMap,
) -> RfResult {
    let s = vmedia_request(&bmc, &id, &dev, &headers).await?;
    s.eject_media();
    Ok(no_content())
}

/// `PATCH` on the virtual media (`{"Image": url, "Inserted": true}`), as some clients use.
pub(super) async fn patch_vmedia(
    State(bmc): State<Shared>,
    Path((id, dev)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RfResult {
    let s = vmedia_request(&bmc, &id, &dev, &headers).await?;
    let body = parse_body(&body)?;
    if !if_match_ok(&headers, &resources::virtual_media(s)) {
        return Err(RfError::PreconditionFailed);
    }
    match string_prop(&body, "Image")? {
        Some(image) if !image.is_empty() => {
            check_image(image).await?;
            s.eject_media();
            insert_from(s, &body)?;
        }
        _ => s.eject_media(),
    }
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn refusal(url: &str) -> String {
        match check_image(url).await {
            Err(RfError::BadRequest { message, .. }) => message,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[tokio::test]
    async fn images_are_fetched_only_from_this_hosts_addresses() {
        // TEST-NET-1 is no address of this host: refused before any connection.
        let m = refusal("http://192.0.2.1/x.iso").await;
        assert!(m.contains("this host's own addresses"), "{m}");
        assert!(
            refusal("ftp://127.0.0.1/x.iso")
                .await
                .contains("only http and https")
        );
        // A local address is tried (nothing listens on port 1 here).
        let m = refusal("http://127.0.0.1:1/x.iso").await;
        assert!(m.contains("download failed"), "{m}");
    }
}
