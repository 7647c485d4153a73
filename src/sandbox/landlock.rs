//! The agent's Landlock domain: read and execute beneath the plan's readable places, read and
//! write beneath its writable ones, nothing elsewhere; abstract Unix sockets and signals scoped
//! to the sandbox (ABI 6). A Landlock domain also keeps ptrace and `/proc/PID/mem` or `environ`
//! of every process outside it out of reach, whatever Yama says.

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
    path_beneath_rules,
};

use super::Plan;

/// Restricts this process (and everything it starts) as the plan says, at the plan's ABI.
/// Anything less than what that ABI offers is an error: the caller does not start the agent.
pub fn restrict(plan: &Plan) -> Result<(), String> {
    let abi = ABI::from(plan.landlock_abi);
    let fail = |e: &dyn std::fmt::Display| format!("Landlock: {e}");
    let mut ruleset = Ruleset::default().set_compatibility(CompatLevel::HardRequirement);
    ruleset = ruleset.handle_access(AccessFs::from_all(abi)).map_err(|e| fail(&e))?;
    if plan.landlock_abi >= 6 {
        ruleset = ruleset.scope(Scope::from_all(abi)).map_err(|e| fail(&e))?;
    }
    let status = ruleset
        .create()
        .map_err(|e| fail(&e))?
        .add_rules(path_beneath_rules(&plan.landlock_read, AccessFs::from_read(abi)))
        .map_err(|e| fail(&e))?
        .add_rules(path_beneath_rules(&plan.landlock_write, AccessFs::from_all(abi)))
        .map_err(|e| fail(&e))?
        .restrict_self()
        .map_err(|e| fail(&e))?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok(()),
        other => Err(format!("Landlock is not fully enforced ({other:?})")),
    }
}
