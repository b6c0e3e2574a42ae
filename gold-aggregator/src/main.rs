//! gold-aggregator: placeholder. This worker is not built yet (see the open issues); it
//! exists so the workspace layout is final and deployment files can name it.

fn main() -> std::process::ExitCode {
    eprintln!("gold-aggregator is not implemented yet: only bronze-ingestor runs today");
    std::process::ExitCode::from(64)
}
