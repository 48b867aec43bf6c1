//! COM_QUERY: one decision ([`decide`]), then carry out the command it returns: answer from
//! session state, refuse, run Sluice's own transaction step, relay to one backend, or fan out
//! to several shards.

use super::super::error::{refusal_to_client, SessionError};
use super::super::Session;
use crate::protocol::response::Expect;
use crate::protocol::resultset::{text_result_set, Column, ColumnType};
use crate::router::decide::{decide, Command, Fanout, Local, Plan, Rules};
use crate::router::{Feature, Kind};
use crate::stats::Destination;
use bytes::Bytes;

/// Handles COM_QUERY.
pub(in crate::session) async fn query(s: &mut Session, payload: Bytes) -> Result<(), SessionError> {
    let started = std::time::Instant::now();
    // Valid UTF-8 (nearly every statement) is checked by the fast validator and borrowed;
    // only other bytes go through the lossy decoder's slower chunk walk.
    let sql = match std::str::from_utf8(&payload[1..]) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(&payload[1..]),
    };
    s.statement_began(&payload, started);
    let utf8 = matches!(sql, std::borrow::Cow::Borrowed(_));
    let view = s.view();
    let command = {
        let snap = &s.snap;
        decide(&sql, utf8, &view, &Rules::of(&snap.topology, snap.version))
    };
    tracing::trace!(?command, "query");
    if !matches!(command, Command::Local(Local::Warnings(_))) {
        // Answered here or elsewhere without warnings unless the relayed response says otherwise.
        s.warnings = None;
    }
    let fingerprint = match &command {
        Command::Execute(plan) => Some(plan.analysis.fingerprint),
        _ => None,
    };
    // What the statement may change, for the result cache (answered or refused by Sluice:
    // nothing).
    let changes = match &command {
        Command::Execute(plan) => Some((plan.analysis.kind, plan.analysis.features.has(Feature::Routine))),
        Command::Fanout(Fanout::Scatter { .. }) => Some((Kind::Read, false)),
        Command::Fanout(Fanout::Each { .. }) => Some((Kind::Write, false)),
        Command::Txn(_) => Some((Kind::Other, false)),
        Command::Local(_) | Command::Refuse(_) => None,
    };
    s.note.begin(match command {
        Command::Refuse(_) => Destination::Refused,
        Command::Fanout(_) => Destination::Scatter,
        Command::Execute(_) => Destination::Primary,
        Command::Local(_) | Command::Txn(_) => Destination::Sluice,
    });
    let r = match command {
        Command::Local(local) => answer_locally(s, local).await,
        Command::Refuse(refusal) => {
            if refusal.is_sharding() {
                s.shared.metrics.sharded[4].inc();
            }
            s.answer_error(&refusal_to_client(&refusal));
            Ok(())
        }
        Command::Txn(step) => {
            super::sharded::transaction_step(s, step, payload.slice(1..)).await;
            Ok(())
        }
        Command::Fanout(fanout) => super::sharded::fanout(s, fanout).await,
        Command::Execute(plan) => match super::cached::cacheable(s, &sql, &payload[1..], &plan) {
            Some(c) => super::cached::execute(s, payload.clone(), &plan, c).await,
            None => execute(s, payload.clone(), plan).await,
        },
    };
    if let Some((kind, routine)) = changes {
        super::cached::after_statement(s, &sql, kind, routine);
    }
    s.observe(&sql, fingerprint, started);
    r
}

/// What Sluice answers itself.
async fn answer_locally(s: &mut Session, local: Local) -> Result<(), SessionError> {
    match local {
        Local::Warnings(q) => super::warnings::answer(s, q),
        Local::SessionValues(values) => super::values::answer(s, &values, false),
        Local::SetConsistency(level) => {
            s.reads.level = Some(level);
            let status = s.state.status();
            s.client.put_ok(s.seq, &crate::protocol::ok::OkPacket::with_status(status));
        }
        Local::ShowConsistency => show_consistency(s),
        Local::Kill(k) => return super::kill::kill_statement(s, k).await,
        Local::TlsStatus(v) => show_tls_status(s, v),
    }
    Ok(())
}

/// `SHOW STATUS LIKE 'Ssl_cipher'` / `'Ssl_version'` of the client's own link (empty in
/// clear, as a server answers), in the two columns a server sends.
fn show_tls_status(s: &mut Session, v: crate::router::local::TlsStatus) {
    use crate::router::local::TlsStatus;
    let (version, suite) = s.client.tls_summary().unwrap_or_default();
    let (name, value) = match v {
        TlsStatus::Cipher => ("Ssl_cipher", crate::tls::openssl_suite_name(&suite)),
        TlsStatus::Version => ("Ssl_version", crate::tls::openssl_version_name(&version)),
    };
    let columns = [
        Column { name: "Variable_name".into(), kind: ColumnType::VarString },
        Column { name: "Value".into(), kind: ColumnType::VarString },
    ];
    let row = vec![Some(name.to_string()), Some(value)];
    let status = s.state.status();
    let packets = text_result_set(&columns, &[row], s.client.framing(status));
    let mut seq = s.seq;
    for p in packets {
        seq = s.client.put(seq, &p);
    }
}

/// One statement on one backend: on the shard the plan names (moving the session's
/// transaction there first, or refusing), with the plan's text.
async fn execute(s: &mut Session, payload: Bytes, plan: Plan<'_>) -> Result<(), SessionError> {
    if plan.analysis.kind == Kind::Unknown {
        s.shared.metrics.unparsed.inc();
    }
    if let Some(target) = plan.shard {
        if let Err(e) = s.enter_shard(target.index).await {
            s.shared.metrics.sharded[4].inc();
            s.answer_error(&e);
            return Ok(());
        }
        if plan.by_ring {
            s.shared.metrics.sharded[0].inc();
        }
    }
    let payload = match plan.rewrite {
        Some(text) => {
            let mut p = Vec::with_capacity(text.len() + 1);
            p.push(crate::protocol::com::QUERY);
            p.extend_from_slice(text.as_bytes());
            Bytes::from(p)
        }
        None => payload,
    };
    s.execute(payload, Expect::Results, Some(&plan.analysis), plan.shard).await?;
    Ok(())
}

/// `SELECT @@sluice_consistency`: the session's level.
fn show_consistency(s: &mut Session) {
    let status = s.state.status();
    let columns = [Column { name: "@@sluice_consistency".into(), kind: ColumnType::VarString }];
    let row = vec![Some(s.consistency().as_str().to_string())];
    let packets = text_result_set(&columns, &[row], s.client.framing(status));
    let mut seq = s.seq;
    for p in packets {
        seq = s.client.put(seq, &p);
    }
}
