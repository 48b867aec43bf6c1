//! Passwords that are not in the file: `password_env` names an environment variable and
//! `password_file` a file (how Kubernetes Secrets and systemd credentials arrive), resolved
//! into the plain fields when the config is loaded, so the rest of Sluice sees one password.
//! A file is read again at every reload, so rotating a secret file and reloading applies it.

use super::validate::{line_of, ConfigError, Problem};
use super::Config;
use toml::Spanned;

/// Fills every password given by `*_env` / `*_file`; every problem is reported with its line.
pub fn resolve(cfg: &mut Config, text: &str) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    for u in &mut cfg.users {
        let who = format!("user '{}'", u.name.get_ref());
        if let Some(p) =
            one(&who, "password", !u.password.is_empty(), &u.password_env, &u.password_file, text, &mut problems)
        {
            u.password = p;
        }
        let given = u.backend_password.is_some();
        let (env, file) = (&u.backend_password_env, &u.backend_password_file);
        if let Some(p) = one(&who, "backend_password", given, env, file, text, &mut problems) {
            u.backend_password = Some(p);
        }
    }
    let p = &mut cfg.proxy;
    if let Some(t) = one("[proxy]", "admin_token", false, &p.admin_token_env, &p.admin_token_file, text, &mut problems)
    {
        if t.is_empty() {
            problems.push(Problem { line: None, message: "[proxy]: the admin token is empty".into() });
        }
        p.admin_token = Some(t);
    }
    for u in &mut cfg.admin.users {
        let who = format!("admin user '{}'", u.name.get_ref());
        if let Some(p) =
            one(&who, "password", !u.password.is_empty(), &u.password_env, &u.password_file, text, &mut problems)
        {
            u.password = p;
        }
    }
    let m = &mut cfg.monitor;
    if let Some(p) =
        one("[monitor]", "password", !m.password.is_empty(), &m.password_env, &m.password_file, text, &mut problems)
    {
        m.password = p;
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError { problems })
    }
}

/// The secret `key` of `who` from its `_env` or `_file` form, if one is given (and only one
/// form of the key is).
fn one(
    who: &str,
    key: &str,
    inline: bool,
    env: &Option<Spanned<String>>,
    file: &Option<Spanned<String>>,
    text: &str,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let at = |v: &Spanned<String>| Some(line_of(text, v.span().start));
    let forms = usize::from(inline) + usize::from(env.is_some()) + usize::from(file.is_some());
    if forms > 1 {
        let line = env.as_ref().or(file.as_ref()).and_then(at);
        problems.push(Problem { line, message: format!("{who}: give only one of {key}, {key}_env, {key}_file") });
        return None;
    }
    if let Some(var) = env {
        return match std::env::var(var.get_ref()) {
            Ok(v) => Some(v),
            Err(_) => {
                let message = format!("{who}: {key}_env names '{}', which is not set (or not UTF-8)", var.get_ref());
                problems.push(Problem { line: at(var), message });
                None
            }
        };
    }
    if let Some(path) = file {
        return match std::fs::read_to_string(path.get_ref()) {
            Ok(v) => Some(v.strip_suffix('\n').map(|v| v.strip_suffix('\r').unwrap_or(v)).unwrap_or(&v).to_string()),
            Err(e) => {
                problems
                    .push(Problem { line: at(path), message: format!("{who}: {key}_file '{}': {e}", path.get_ref()) });
                None
            }
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn base(users: &str) -> String {
        format!("[proxy]\nlisten = \"127.0.0.1:1\"\n{users}\n[[shards]]\nname = \"main\"\nprimary = \"127.0.0.1:2\"\n")
    }

    #[test]
    fn passwords_come_from_files_and_environment_variables() {
        let dir = std::env::temp_dir().join(format!("sluice-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("app");
        std::fs::write(&file, "from-file\n").unwrap();
        std::env::set_var("SLUICE_TEST_SECRET_MON", "from-env");
        let text = base(&format!(
            "[[users]]\nname = \"app\"\npassword_file = \"{}\"\nbackend_password_env = \"SLUICE_TEST_SECRET_MON\"\n\n[monitor]\nuser = \"m\"\npassword_env = \"SLUICE_TEST_SECRET_MON\"",
            file.display()
        ));
        let cfg = Config::parse(&text).unwrap();
        assert_eq!(cfg.users[0].password, "from-file", "one trailing newline dropped");
        assert_eq!(cfg.users[0].backend_password.as_deref(), Some("from-env"));
        assert_eq!(cfg.monitor.password, "from-env");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_or_doubled_secrets_are_errors_with_their_line() {
        let text = base("[[users]]\nname = \"app\"\npassword_env = \"SLUICE_TEST_SECRET_NOT_SET_ANYWHERE\"");
        let e = Config::parse(&text).unwrap_err();
        assert_eq!(e.problems[0].line, Some(5), "{e}");
        assert!(e.to_string().contains("is not set"), "{e}");
        let text = base("[[users]]\nname = \"app\"\npassword_file = \"/nonexistent/secret\"");
        assert!(Config::parse(&text).unwrap_err().to_string().contains("/nonexistent/secret"));
        let text = base("[[users]]\nname = \"app\"\npassword = \"x\"\npassword_env = \"HOME\"");
        assert!(Config::parse(&text).unwrap_err().to_string().contains("only one of"));
    }
}
