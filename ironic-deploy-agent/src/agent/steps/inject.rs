//! `inject_files` (IPA's `inject_files.py`): write, replace or delete files in
//! the filesystems of the root device, from the step's `files` and the node's
//! `properties.inject_files`.
//!
//! The file structure and its checks are IPA's: `path`, `partition`, `content`
//! (base64, or a URL, formatted with `{node[...]}` / `{ports[N][...]}` first),
//! `deleted`, `mode`, `dirmode`, `owner`, `group` (numbers); a file in `/` needs a
//! `partition`; without one, the file goes to the partition that has the first
//! directory of its path (`/etc/...` → the partition with `/etc`).
//!
//! Unlike IPA, nothing is mounted for ext2/3/4 and FAT: ext is written with
//! e2fsprogs' `debugfs -w` on `device?offset=` and FAT in user space, so the
//! tenant's filesystem is never handed to the kernel and file disks work too.
//! Other filesystems (XFS, btrfs) are mounted as IPA does, when their partition
//! device exists.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::{argv, run_tool, run_tool_status};
use crate::agent::State;
use crate::error::{AgentError, Result};
use crate::image::{self, esp, partition};

/// GPT type of Linux LVM physical volumes (skipped when searching, as IPA does).
const LVM_GPT: uuid::Uuid = uuid::Uuid::from_u128(0xE6D6D379_F507_44C2_A23C_238F2A3DF928);

/// One file of the step (IPA's file structure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InjectFile {
    /// Absolute path in the target filesystem.
    pub path: String,
    /// Partition specifier: number, device, `UUID=`/`LABEL=`/`PARTUUID=`/`PARTLABEL=`.
    pub partition: Option<String>,
    /// Base64 text or a URL template.
    pub content: Option<String>,
    /// Delete the file instead.
    pub deleted: bool,
    /// File mode.
    pub mode: Option<u32>,
    /// Mode of the leaf directory when it is created.
    pub dirmode: Option<u32>,
    /// Owner uid.
    pub owner: Option<u32>,
    /// Group gid.
    pub group: Option<u32>,
}

/// IPA's `_validate_files`: the node's files then the step's, every problem
/// reported at once.
pub fn validate(from_properties: &Value, from_args: &Value) -> Result<Vec<InjectFile>> {
    let lists = [
        ("The `inject_files` node property", from_properties),
        ("The `files` argument", from_args),
    ];
    let mut raw = Vec::new();
    for (what, v) in lists {
        match v {
            Value::Null => {}
            Value::Array(a) => raw.extend(a.iter()),
            other => {
                return Err(AgentError::InvalidParams(format!(
                    "{what} must be a list, got {}",
                    json_type(other)
                )));
            }
        }
    }
    let mut failures = Vec::new();
    let mut files = Vec::new();
    for fl in raw {
        let Some(o) = fl.as_object() else {
            failures.push(format!("expected an object, got {fl}"));
            continue;
        };
        let unknown: Vec<&str> = o
            .keys()
            .map(String::as_str)
            .filter(|k| {
                ![
                    "path",
                    "partition",
                    "content",
                    "deleted",
                    "mode",
                    "dirmode",
                    "owner",
                    "group",
                ]
                .contains(k)
            })
            .collect();
        if !unknown.is_empty() {
            failures.push(format!("unexpected fields in {fl}: {}", unknown.join(", ")));
        }
        let path = o.get("path").and_then(Value::as_str).unwrap_or("");
        let partition = match o.get("partition") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(v) => {
                failures.push(format!("partition must be a string or a number in {v}"));
                None
            }
        };
        if path.is_empty() {
            failures.push(format!("expected a path in {fl}"));
        } else if !path.starts_with('/') {
            failures.push(format!("{path} in {fl} is not an absolute path"));
        } else if path.ends_with('/') {
            failures.push(format!("directories not supported for {fl}"));
        } else if parent(path) == "/" && partition.is_none() {
            failures.push(format!("{fl} in root directory requires \"partition\""));
        } else if path.split('/').any(|c| c == "..") {
            failures.push(format!("{path} in {fl} contains \"..\""));
        }
        let deleted = o.get("deleted").and_then(super::as_bool).unwrap_or(false);
        let content = match o.get("content") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                failures.push(format!("content must be a string in {v}"));
                None
            }
        };
        if content.as_deref().is_some_and(|c| !c.is_empty()) && deleted {
            failures.push(format!("content cannot be used with deleted in {fl}"));
        }
        let mut num = |field: &str| match o.get(field) {
            None => None,
            Some(Value::Number(n)) if n.is_u64() => n.as_u64().map(|v| v as u32),
            Some(_) => {
                failures.push(format!("{field} must be a number in {fl}"));
                None
            }
        };
        let (mode, dirmode, owner, group) =
            (num("mode"), num("dirmode"), num("owner"), num("group"));
        files.push(InjectFile {
            path: path.to_owned(),
            partition,
            content,
            deleted,
            mode,
            dirmode,
            owner,
            group,
        });
    }
    if !failures.is_empty() {
        return Err(AgentError::InvalidParams(format!(
            "Validation of files failed: {}",
            failures.join("; ")
        )));
    }
    Ok(files)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

/// Python's `str.format(node=node, ports=ports)` for the fields IPA's users
/// write in URLs: `{node[uuid]}`, `{node[properties][key]}`,
/// `{ports[0][address]}`; `{{` and `}}` are literal braces.
pub fn format_url(template: &str, node: &Value, ports: &Value) -> Result<String> {
    let bad = |m: String| AgentError::InvalidParams(format!("inject_files: URL {template}: {m}"));
    let mut out = String::new();
    let mut it = template.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '{' if it.peek() == Some(&'{') => {
                it.next();
                out.push('{');
            }
            '}' if it.peek() == Some(&'}') => {
                it.next();
                out.push('}');
            }
            '}' => return Err(bad("Single '}' encountered in format string".into())),
            '{' => {
                let mut field = String::new();
                loop {
                    match it.next() {
                        Some('}') => break,
                        Some(c) => field.push(c),
                        None => return Err(bad("Single '{' encountered in format string".into())),
                    }
                }
                let (name, mut rest) = field.split_at(field.find('[').unwrap_or(field.len()));
                let mut v = match name {
                    "node" => node,
                    "ports" => ports,
                    other => return Err(bad(format!("unknown field {other:?} (node, ports)"))),
                };
                while !rest.is_empty() {
                    let Some(close) = rest.find(']').filter(|_| rest.starts_with('[')) else {
                        return Err(bad(format!("cannot use {field:?}: only [key] lookups")));
                    };
                    let key = &rest[1..close];
                    v = match (v, key.parse::<usize>()) {
                        (Value::Array(a), Ok(i)) => a.get(i),
                        (Value::Object(o), _) => o.get(key),
                        _ => None,
                    }
                    .ok_or_else(|| bad(format!("{field} does not exist")))?;
                    rest = &rest[close + 1..];
                }
                match v {
                    Value::String(s) => out.push_str(s),
                    Value::Null => out.push_str("None"),
                    Value::Bool(true) => out.push_str("True"),
                    Value::Bool(false) => out.push_str("False"),
                    other => out.push_str(&other.to_string()),
                }
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// A filesystem to write into: a region of a device.
#[derive(Clone, Debug)]
struct Target {
    device: PathBuf,
    part: partition::Partition,
    /// The kernel's device for it (for mounting other filesystems).
    dev_node: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fs {
    Ext,
    Fat,
    Other,
}

fn fs_of(f: &std::fs::File, part: &partition::Partition) -> Fs {
    if partition::ext_uuid(f, part.start).is_some() {
        Fs::Ext
    } else if esp::open(f, part).is_ok() {
        Fs::Fat
    } else {
        Fs::Other
    }
}

fn ext_label(f: &std::fs::File, start: u64) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let mut sb = [0u8; 136];
    f.read_exact_at(&mut sb, start + 1024).ok()?;
    if sb[0x38] != 0x53 || sb[0x39] != 0xEF {
        return None;
    }
    let l = String::from_utf8_lossy(&sb[0x78..0x88])
        .trim_end_matches('\0')
        .to_owned();
    (!l.is_empty()).then_some(l)
}

fn whole(device: &Path) -> Result<Target> {
    let (_, size) = image::open_device(device)?;
    Ok(Target {
        device: device.to_owned(),
        part: partition::Partition {
            number: 0,
            start: 0,
            len: size,
            name: String::new(),
            uuid: String::new(),
            kind: partition::PartKind::Mbr(0),
        },
        dev_node: device.display().to_string(),
    })
}

/// The partition a specifier names on the root device `dev` (IPA: a number is a
/// partition of the root device; anything else is given to `mount`, which
/// takes a device path or `UUID=`, `LABEL=`, `PARTUUID=`, `PARTLABEL=`).
fn find_by_spec(dev: &Path, spec: &str) -> Result<Target> {
    let dev_s = dev.display().to_string();
    let (f, _) = image::open_device(dev)?;
    let table = partition::read_table(&f)?;
    let target = |p: &partition::Partition| Target {
        device: dev.to_owned(),
        part: p.clone(),
        dev_node: partition::partition_path(&dev_s, p.number),
    };
    let parts = table.partitions();
    if let Ok(n) = spec.parse::<u32>() {
        return parts
            .iter()
            .find(|p| p.number == n)
            .map(target)
            .ok_or_else(|| {
                AgentError::InvalidParams(format!(
                    "inject_files: the root device {dev_s} has no partition {n}"
                ))
            });
    }
    if spec.starts_with('/') {
        if let Some(p) = parts
            .iter()
            .find(|p| partition::partition_path(&dev_s, p.number) == spec)
        {
            return Ok(target(p));
        }
        if Path::new(spec).exists() {
            return whole(Path::new(spec));
        }
        return Err(AgentError::InvalidParams(format!(
            "inject_files: {spec} does not exist"
        )));
    }
    let (key, want) = spec.split_once('=').unwrap_or(("", spec));
    let hit = |p: &partition::Partition| {
        let fs_uuid = partition::fs_uuid(&f, p.start);
        let label = partition::fs_label(&f, p.start).or_else(|| ext_label(&f, p.start));
        let eq = |a: Option<&str>| a.is_some_and(|a| a.eq_ignore_ascii_case(want));
        match key {
            "UUID" => eq(fs_uuid.as_deref()),
            "LABEL" => label.as_deref() == Some(want),
            "PARTUUID" => eq(Some(&p.uuid)),
            "PARTLABEL" => p.name == want,
            _ => {
                eq(fs_uuid.as_deref())
                    || eq(Some(&p.uuid))
                    || label.as_deref() == Some(want)
                    || (!p.name.is_empty() && p.name == want)
            }
        }
    };
    parts.iter().find(|p| hit(p)).map(target).ok_or_else(|| {
        AgentError::InvalidParams(format!(
            "inject_files: no partition of {dev_s} matches {spec:?}"
        ))
    })
}

/// IPA's `find_partition_with_path`: the first partition (LVM skipped) whose
/// filesystem has the directory `dir`.
fn find_with_dir(dev: &Path, dir: &str) -> Result<Target> {
    let dev_s = dev.display().to_string();
    let (f, _) = image::open_device(dev)?;
    let table = partition::read_table(&f)?;
    let mut scanned = Vec::new();
    for p in table.partitions() {
        if matches!(p.kind, partition::PartKind::Gpt(g) if g == LVM_GPT)
            || p.kind == partition::PartKind::Mbr(0x8e)
        {
            continue;
        }
        scanned.push(p.number.to_string());
        let found = match fs_of(&f, p) {
            Fs::Ext => crate::agent::grub::ext4_is_dir(&f, p, dir).unwrap_or(false),
            Fs::Fat => esp::open(&f, p)
                .map(|fat| fat.root_dir().open_dir(dir.trim_start_matches('/')).is_ok())
                .unwrap_or(false),
            Fs::Other => false,
        };
        if found {
            return Ok(Target {
                device: dev.to_owned(),
                part: p.clone(),
                dev_node: partition::partition_path(&dev_s, p.number),
            });
        }
    }
    Err(AgentError::NoRootDevice(format!(
        "No partition found with path {dir}, scanned: partitions {} of {dev_s} (ext2/3/4 and \
         FAT filesystems are searched)",
        scanned.join(", ")
    )))
}

/// Write `data` as `path` (an existing file keeps its mode and owner) in the
/// ext2/3/4 filesystem of partition `part` of `device`, with `debugfs -w`.
pub(crate) async fn ext_write(
    device: &Path,
    part: &partition::Partition,
    path: &str,
    data: &[u8],
) -> Result<()> {
    let tmp = std::env::temp_dir().join(format!(
        "ironic-agent-write-{}",
        crate::agent::entropy::uuid_v4()
    ));
    std::fs::create_dir_all(&tmp).map_err(|e| AgentError::io("creating a temp dir", e))?;
    let t = Target {
        device: device.to_owned(),
        part: part.clone(),
        dev_node: String::new(),
    };
    let file = InjectFile {
        path: path.to_owned(),
        partition: None,
        content: None,
        deleted: false,
        mode: None,
        dirmode: None,
        owner: None,
        group: None,
    };
    let r = ext_apply(&t, &file, Some(data), &tmp).await;
    let _ = std::fs::remove_dir_all(&tmp);
    r
}

/// Write (or delete) one file in an ext2/3/4 filesystem with `debugfs -w`.
async fn ext_apply(t: &Target, file: &InjectFile, data: Option<&[u8]>, tmp: &Path) -> Result<()> {
    use crate::agent::grub::{ext4_is_dir, ext4_metadata};
    let (f, _) = image::open_device(&t.device)?;
    let existing = ext4_metadata(&f, &t.part, &file.path)?;
    let target = format!("{}?offset={}", t.device.display(), t.part.start);
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\\\""));
    let mut cmds = String::new();
    match data {
        None => {
            if existing.is_none() {
                return Ok(()); // IPA: unlink_without_raise
            }
            cmds.push_str(&format!("rm {}\n", q(&file.path)));
        }
        Some(data) => {
            let dir = parent(&file.path);
            if !ext4_is_dir(&f, &t.part, dir)? {
                let mut cur = String::new();
                for c in dir.trim_start_matches('/').split('/') {
                    cur.push('/');
                    cur.push_str(c);
                    if !ext4_is_dir(&f, &t.part, &cur)? {
                        cmds.push_str(&format!("mkdir {}\n", q(&cur)));
                    }
                }
                if let Some(m) = file.dirmode {
                    cmds.push_str(&format!(
                        "sif {} mode 0{:o}\n",
                        q(dir),
                        0o40000 | (m & 0o7777)
                    ));
                }
            }
            let src = tmp.join("content");
            std::fs::write(&src, data)
                .map_err(|e| AgentError::io("staging an injected file", e))?;
            // an existing file keeps its mode and owner unless told (as IPA's open("wb"))
            let (mode, uid, gid) = match &existing {
                Some((m, u, g)) => (u32::from(*m) & 0o7777, *u, *g),
                None => (0o644, 0, 0),
            };
            if existing.is_some() {
                cmds.push_str(&format!("rm {}\n", q(&file.path)));
            }
            cmds.push_str(&format!(
                "write {} {}\n",
                q(&src.display().to_string()),
                q(&file.path)
            ));
            cmds.push_str(&format!(
                "sif {} mode 0{:o}\n",
                q(&file.path),
                0o100000 | file.mode.unwrap_or(mode) & 0o7777
            ));
            cmds.push_str(&format!(
                "sif {} uid {}\n",
                q(&file.path),
                file.owner.unwrap_or(uid)
            ));
            cmds.push_str(&format!(
                "sif {} gid {}\n",
                q(&file.path),
                file.group.unwrap_or(gid)
            ));
        }
    }
    let script = tmp.join("debugfs.cmds");
    std::fs::write(&script, &cmds).map_err(|e| AgentError::io("writing debugfs commands", e))?;
    let out = run_tool_status(
        "debugfs",
        &argv(&["-w", "-f", &script.display().to_string(), &target]),
    )
    .await?;
    // debugfs reports most errors on stderr and exits 0: check the result
    let (f, _) = image::open_device(&t.device)?;
    let ok = match data {
        None => ext4_metadata(&f, &t.part, &file.path)?.is_none(),
        Some(data) => {
            crate::agent::grub::ext4_read(&f, &t.part, &file.path)
                .ok()
                .as_deref()
                == Some(data)
                && file.mode.is_none_or(|m| {
                    ext4_metadata(&f, &t.part, &file.path)
                        .ok()
                        .flatten()
                        .is_some_and(|(got, _, _)| u32::from(got) & 0o7777 == m & 0o7777)
                })
        }
    };
    if !ok || !out.status.success() {
        return Err(AgentError::CommandFailed(format!(
            "inject_files: debugfs could not {} {} on partition {}: {}",
            if data.is_some() { "write" } else { "delete" },
            file.path,
            t.part.number,
            out.stderr.trim()
        )));
    }
    Ok(())
}

/// Write (or delete) one file in a FAT filesystem (modes and owners do not
/// exist there and are ignored).
fn fat_apply(t: &Target, file: &InjectFile, data: Option<&[u8]>) -> Result<()> {
    let (f, _) = image::open_device(&t.device)?;
    let fat = esp::open(&f, &t.part)?;
    match data {
        Some(d) => esp::write(&fat, &file.path, d),
        None => match fat.root_dir().remove(file.path.trim_start_matches('/')) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(AgentError::io(format!("deleting {}", file.path), e)),
        },
    }?;
    fat.unmount()
        .map_err(|e| AgentError::io("closing the FAT filesystem", e))
}

/// Other filesystems: mount the partition device as IPA does.
async fn mounted_apply(
    t: &Target,
    file: &InjectFile,
    data: Option<&[u8]>,
    tmp: &Path,
) -> Result<()> {
    if !super::is_block_device(Path::new(&t.dev_node)) {
        return Err(AgentError::CommandFailed(format!(
            "inject_files: partition {} of {} is neither ext2/3/4 nor FAT, and {} is not a block \
             device that could be mounted",
            t.part.number,
            t.device.display(),
            t.dev_node
        )));
    }
    let mnt = tmp.join("mnt");
    std::fs::create_dir_all(&mnt).map_err(|e| AgentError::io("creating a mount point", e))?;
    let m = mnt.display().to_string();
    run_tool("mount", &argv(&[&t.dev_node, &m])).await?;
    let r = (|| -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let p = mnt.join(file.path.trim_start_matches('/'));
        let Some(data) = data else {
            return match std::fs::remove_file(&p) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                r => r,
            };
        };
        let dir = p.parent().unwrap_or(&mnt);
        if !dir.is_dir() {
            std::fs::create_dir_all(dir)?;
            if let Some(dm) = file.dirmode {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dm))?;
            }
        }
        std::fs::write(&p, data)?;
        if let Some(md) = file.mode {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(md))?;
        }
        if file.owner.is_some() || file.group.is_some() {
            std::os::unix::fs::chown(&p, file.owner, file.group)?;
        }
        Ok(())
    })();
    let u = run_tool("umount", &argv(&[&m])).await;
    r.map_err(|e| AgentError::io(format!("injecting {}", file.path), e))?;
    u.map(|_| ())
}

/// `inject_files`: the files of the node's `properties.inject_files` and of the
/// step's `files`, in that order.
pub(crate) async fn inject_files(
    st: &Arc<State>,
    node: &Value,
    ports: &Value,
    args: &Map<String, Value>,
) -> Result<Value> {
    let files = validate(
        node.pointer("/properties/inject_files")
            .unwrap_or(&Value::Null),
        args.get("files").unwrap_or(&Value::Null),
    )?;
    if files.is_empty() {
        return Ok(json!({"injected": [], "note": "No files to inject"}));
    }
    let verify_ca = args.get("verify_ca").cloned().unwrap_or(Value::Bool(true));
    let http = client(st, &verify_ca)?;
    let dev = crate::agent::commands::root_device_path(st).await?;
    let tmp = std::env::temp_dir().join(format!(
        "ironic-agent-inject-{}",
        crate::agent::entropy::uuid_v4()
    ));
    std::fs::create_dir_all(&tmp).map_err(|e| AgentError::io("creating a temp dir", e))?;
    let result = async {
        let mut done = Vec::new();
        for file in &files {
            let data = match (&file.content, file.deleted) {
                (_, true) => None,
                (None, false) => Some(Vec::new()),
                (Some(c), false) if c.contains("://") => {
                    Some(fetch(&http, &format_url(c, node, ports)?, &file.path).await?)
                }
                (Some(c), false) => Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(c.trim())
                        .map_err(|e| {
                            AgentError::InvalidParams(format!(
                                "inject_files: the content of {} is not base64: {e}",
                                file.path
                            ))
                        })?,
                ),
            };
            let t = match &file.partition {
                Some(spec) => find_by_spec(&dev, spec)?,
                None => {
                    let first = file.path.trim_start_matches('/').split('/').next().unwrap_or("");
                    find_with_dir(&dev, &format!("/{first}"))?
                }
            };
            let (f, _) = image::open_device(&t.device)?;
            let fs = fs_of(&f, &t.part);
            drop(f);
            match fs {
                Fs::Ext => ext_apply(&t, file, data.as_deref(), &tmp).await?,
                Fs::Fat => {
                    let (t2, file2, data2) = (t.clone(), file.clone(), data.clone());
                    super::blocking(move || fat_apply(&t2, &file2, data2.as_deref())).await?
                }
                Fs::Other => mounted_apply(&t, file, data.as_deref(), &tmp).await?,
            }
            tracing::info!(path = %file.path, partition = %t.dev_node, deleted = file.deleted, "injected a file");
            done.push(json!({"path": file.path, "partition": t.dev_node,
                "deleted": file.deleted, "bytes": data.as_ref().map(Vec::len)}));
        }
        Ok(json!({"injected": done}))
    }
    .await;
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// The HTTP client for URL contents: `verify_ca` false, true or a CA file.
fn client(st: &State, verify_ca: &Value) -> Result<reqwest::Client> {
    let b = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(30));
    let b = match verify_ca {
        Value::Bool(true) => return Ok(st.http.clone()),
        Value::Bool(false) => b.danger_accept_invalid_certs(true),
        Value::String(s) => match super::as_bool(verify_ca) {
            Some(true) => return Ok(st.http.clone()),
            Some(false) => b.danger_accept_invalid_certs(true),
            None => {
                let pem = std::fs::read(s)
                    .map_err(|e| AgentError::io(format!("reading the CA file {s}"), e))?;
                let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                    AgentError::InvalidParams(format!(
                        "verify_ca {s} is not a PEM certificate: {e}"
                    ))
                })?;
                b.add_root_certificate(cert)
            }
        },
        other => {
            return Err(AgentError::InvalidParams(format!(
                "verify_ca must be a boolean or a CA file path, got {other}"
            )));
        }
    };
    b.build()
        .map_err(|e| AgentError::Other(format!("HTTP client: {e}")))
}

async fn fetch(http: &reqwest::Client, url: &str, path: &str) -> Result<Vec<u8>> {
    let r = http
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| AgentError::Download(format!("inject_files: {path} from {url}: {e}")))?;
    Ok(r.bytes()
        .await
        .map_err(|e| AgentError::Download(format!("inject_files: {path} from {url}: {e}")))?
        .to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_checked_as_ipa_checks_them() {
        let ok = validate(
            &json!([{"path": "/etc/a.conf", "content": "YQ==", "mode": 384}]),
            &json!([{"path": "/b", "partition": 2, "deleted": true, "owner": 0, "group": 0}]),
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].mode, Some(0o600));
        assert_eq!(ok[1].partition.as_deref(), Some("2"));
        assert!(ok[1].deleted);
        let e = validate(
            &Value::Null,
            &json!([
                {"path": "/x", "content": "YQ=="},
                {"path": "/etc/", "content": "YQ=="},
                {"path": "/etc/y", "content": "YQ==", "deleted": true},
                {"path": "/etc/z", "mode": "0644"},
                {"path": "/etc/w", "colour": "blue"},
                {"content": "YQ=="},
                {"path": "/etc/../root/.ssh/k"}
            ]),
        )
        .unwrap_err()
        .to_string();
        for m in [
            "in root directory requires \"partition\"",
            "directories not supported",
            "content cannot be used with deleted",
            "mode must be a number",
            "unexpected fields",
            "colour",
            "expected a path",
            "contains \"..\"",
        ] {
            assert!(e.contains(m), "{m} in {e}");
        }
        let e = validate(&json!({"path": "/a"}), &Value::Null).unwrap_err();
        assert!(e.to_string().contains("must be a list, got dict"), "{e}");
    }

    #[test]
    fn url_templates_are_formatted_as_python_does() {
        let node = json!({"uuid": "1be26c0b", "properties": {"cpu": 8, "x": null},
            "instance_info": {"flag": true}});
        let ports = json!([{"address": "52:54:00:12:34:56"}]);
        assert_eq!(
            format_url(
                "http://h/{node[uuid]}/{ports[0][address]}/{node[properties][cpu]}?a={{b}}",
                &node,
                &ports
            )
            .unwrap(),
            "http://h/1be26c0b/52:54:00:12:34:56/8?a={b}"
        );
        assert_eq!(
            format_url(
                "{node[properties][x]}{node[instance_info][flag]}",
                &node,
                &ports
            )
            .unwrap(),
            "NoneTrue"
        );
        for bad in [
            "http://h/{node[nope]}",
            "http://h/{task}",
            "http://h/{node.uuid}",
            "http://h/{node[uuid]",
            "http://h/}",
            "http://h/{ports[3][address]}",
        ] {
            assert!(format_url(bad, &node, &ports).is_err(), "{bad}");
        }
    }
}
