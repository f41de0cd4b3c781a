//! The `ironic` binary: Ironic-compatible v1 REST API + conductor in one process.
//!
//! `ironic` (or `ironic serve`) runs on 127.0.0.1:6385 with SQLite under
//! `./ironic-data/` and fake hardware enabled; `--config FILE` reads a TOML file
//! (see `ironic.example.toml`), `IRONIC__SECTION__KEY` variables override it, and
//! `--listen` / `--data-dir` override both.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ironic_standalone::config::{Config, LogFormat};
use ironic_standalone::server;

#[derive(Parser, Debug)]
#[command(
    name = "ironic",
    version,
    about = "Bare-metal provisioning with an Ironic-compatible REST API"
)]
struct Cli {
    /// TOML configuration file (every key is documented in ironic.example.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address of the REST API (overrides `[api] listen`).
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Directory of the SQLite database (overrides `[storage] data_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the API and the conductor (the default).
    Serve {
        /// `all` (API and conductor), `api` (API only, several processes on one
        /// PostgreSQL) or `conductor` (overrides `[conductor] role`).
        #[arg(long, value_enum)]
        role: Option<ironic_standalone::config::Role>,
    },
    /// Run the service plus simulated servers (Redfish and IPMI BMCs, machines that
    /// boot the real agent) on loopback, enrolled and made available.
    Lab(ironic_standalone::lab::cli::LabArgs),
    /// Deploy ramdisk tools.
    #[command(subcommand)]
    Ramdisk(RamdiskCommand),
}

#[derive(Subcommand, Debug)]
enum RamdiskCommand {
    /// Build the deploy kernel and initramfs (Debian's kernel, busybox-static and
    /// the static ironic-agent) into DIR.
    Build {
        /// Where the results go.
        #[arg(long, value_name = "DIR")]
        output: PathBuf,
        /// Your own kernel (bzImage) instead of Debian's current one.
        #[arg(long, value_name = "PATH")]
        kernel: Option<PathBuf>,
        /// The modules of --kernel (its /lib/modules/VERSION); default: from its version.
        #[arg(long, value_name = "DIR")]
        modules: Option<PathBuf>,
        /// The statically linked ironic-agent (default: beside this program).
        #[arg(long, value_name = "PATH")]
        agent: Option<PathBuf>,
        /// A statically linked busybox (default /bin/busybox from busybox-static).
        #[arg(long, value_name = "PATH")]
        busybox: Option<PathBuf>,
        /// Where Debian's kernel package is kept between builds (default DIR/.cache).
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
        /// Leave out the agent's tools taken from this host with their libraries
        /// (GRUB, efibootmgr, e2fsprogs, xfsprogs, parted, util-linux, mdadm,
        /// hdparm, nvme-cli, smartmontools): smaller, but partition images, UEFI
        /// boot entries, software RAID and secure erase then fail on the machine.
        #[arg(long, conflicts_with = "with_burnin")]
        without_tools: bool,
        /// Add the burn-in steps' tools (stress-ng, fio) with their libraries
        /// (Debian's fio brings Ceph's, GlusterFS's, RDMA's: ~34 MiB more
        /// initramfs); without them the burn-in steps fail.
        #[arg(long)]
        with_burnin: bool,
        /// Do not build the bootable ISO (ironic-agent.iso).
        #[arg(long)]
        no_iso: bool,
        /// The ISO's kernel command line (the API URL, `ipa-*` options); the
        /// serial and screen consoles are always on it.
        #[arg(long, value_name = "PARAMS", default_value = "")]
        iso_kernel_params: String,
    },
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cfg.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ironic_standalone::progress::StderrWriter);
    match cfg.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Ramdisk(RamdiskCommand::Build {
        output,
        kernel,
        modules,
        agent,
        busybox,
        cache,
        without_tools,
        with_burnin,
        no_iso,
        iso_kernel_params,
    })) = &cli.command
    {
        let opts = ironic_standalone::ramdisk::BuildOptions {
            output: output.clone(),
            kernel: kernel.clone(),
            modules: modules.clone(),
            agent: agent.clone(),
            busybox: busybox.clone(),
            cache: cache.clone(),
            without_tools: *without_tools,
            with_burnin: *with_burnin,
            iso_cmdline: (!no_iso).then(|| {
                format!("console=tty0 console=ttyS0,115200n8 {iso_kernel_params}")
                    .trim()
                    .to_owned()
            }),
        };
        let progress = ironic_standalone::progress::Progress::stderr("ironic ramdisk build");
        return match ironic_standalone::ramdisk::build_reporting(&opts, &progress) {
            Ok(report) => {
                println!("{}", report.summary());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ironic ramdisk build: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut cfg = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ironic: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(l) = cli.listen {
        cfg.api.listen = l;
    }
    let lab_dir = cli.data_dir.clone();
    if let Some(d) = cli.data_dir {
        cfg.storage.data_dir = d;
    }
    init_logging(&cfg);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ironic: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve { role: None }) {
        Command::Ramdisk(_) => return ExitCode::SUCCESS,
        Command::Serve { role } => {
            if let Some(r) = role {
                cfg.conductor.role = r;
            }
            runtime.block_on(server::serve(cfg, server::shutdown_signal()))
        }
        Command::Lab(args) => {
            use ironic_standalone::lab::cli;
            let run = async {
                let opts = cli::options(&args, cli.listen, lab_dir)?;
                cli::run(opts, server::shutdown_signal()).await
            };
            return match runtime.block_on(run) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ironic lab: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ironic: {e}");
            ExitCode::FAILURE
        }
    }
}
