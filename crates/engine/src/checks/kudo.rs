//! KUDO operators under secondary support.

use crate::checks::Scope;
use crate::collect::Out;
use crate::messages;
use crate::rules::{Rule, Severity};
use crate::targets::FieldKind;

pub(crate) fn check(s: &mut Scope, out: &mut Out) {
    let Some(at) = s.first(FieldKind::KudoOperator) else {
        return;
    };
    let Some(op) = at.value.as_str() else {
        return;
    };
    if s.policy
        .secondary_kudo_operators
        .contains(&op.trim().to_ascii_lowercase())
    {
        out.push(
            Rule::SecondarySupport,
            Severity::Info,
            &at,
            messages::secondary_kudo(op),
        );
    }
}
