//! What a container runs: the binary and its argument vector, recovered from the pod's
//! `command`/`args` the way a shell and the image entrypoint would, and flag parsing in
//! the style of the real binaries (Go's `flag` package for pd-server, clap for
//! tikv-server).

use std::collections::BTreeMap;

/// The binary a container executes and its arguments (without argv\[0\]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The program as written (`/pd-server`, `pd-server`, `/bin/sleep`).
    pub program: String,
    pub args: Vec<String>,
}

impl Invocation {
    /// The program's file name (`pd-server` for `/pd-server`).
    pub fn binary(&self) -> &str {
        self.program.rsplit('/').next().unwrap_or(&self.program)
    }
}

/// Recovers the invocation from a container's `command` and `args` (with `$(VAR)`
/// already expanded by the kubelet). Handles a direct exec, the image entrypoint
/// (`command` empty: `entrypoint` with `args`), and `sh -c '...'` whose script runs
/// the binary on one line (optionally after `exec`, among other lines), expanding
/// `$VAR`/`${VAR}` from `env`.
pub fn invocation(
    command: &[String],
    args: &[String],
    entrypoint: &str,
    env: &[(String, String)],
) -> Result<Invocation, String> {
    let mut argv: Vec<String> = if command.is_empty() {
        std::iter::once(entrypoint.to_owned()).chain(args.iter().cloned()).collect()
    } else {
        command.iter().chain(args.iter()).cloned().collect()
    };
    if argv.is_empty() {
        return Err("no command to run".into());
    }
    let shell = argv[0].rsplit('/').next().is_some_and(|b| matches!(b, "sh" | "bash" | "dash" | "ash"));
    if shell && argv.get(1).map(String::as_str) == Some("-c") {
        let script = argv.get(2).cloned().unwrap_or_default();
        argv = shell_line(&script, env)?;
    }
    let program = argv.remove(0);
    Ok(Invocation { program, args: argv })
}

/// The line of a shell script that runs a server binary (or the last line), split
/// into words with quotes, escapes and variable expansion applied.
fn shell_line(script: &str, env: &[(String, String)]) -> Result<Vec<String>, String> {
    let joined = script.replace("\\\n", " ");
    let lines: Vec<&str> = joined
        .split(['\n', ';'])
        .flat_map(|l| l.split("&&"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let line = lines
        .iter()
        .find(|l| l.contains("pd-server") || l.contains("tikv-server"))
        .or(lines.last())
        .ok_or_else(|| "sh: empty script".to_owned())?;
    let mut words = split_words(line, env)?;
    if words.first().map(String::as_str) == Some("exec") {
        words.remove(0);
    }
    if words.is_empty() {
        return Err("sh: empty command".into());
    }
    Ok(words)
}

fn lookup<'a>(env: &'a [(String, String)], name: &str) -> &'a str {
    env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// POSIX-ish word splitting: single quotes literal, double quotes with expansion,
/// backslash escapes, `$VAR`, `${VAR}` and `$(VAR)` (left by the kubelet when unset).
fn split_words(line: &str, env: &[(String, String)]) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') => quote = None,
            (Some('\''), _) => cur.push(c),
            (Some('"'), '"') => quote = None,
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, '$') => {
                in_word = true;
                match chars.peek() {
                    Some('{') | Some('(') => {
                        let close = if chars.next() == Some('{') { '}' } else { ')' };
                        let name: String = chars.by_ref().take_while(|&x| x != close).collect();
                        cur.push_str(lookup(env, &name));
                    }
                    Some(x) if x.is_ascii_alphabetic() || *x == '_' => {
                        let mut name = String::new();
                        while let Some(&x) = chars.peek() {
                            if x.is_ascii_alphanumeric() || x == '_' {
                                name.push(x);
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        cur.push_str(lookup(env, &name));
                    }
                    _ => cur.push('$'),
                }
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("sh: syntax error: unterminated quoted string in {line:?}"));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// How a binary's flags are spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagStyle {
    /// Go's `flag` package (pd-server): `-name`, `--name`, `=value` or the next word;
    /// errors read `flag provided but not defined: -x`.
    Go,
    /// clap (tikv-server): `--name value`, `--name=value`, `-C value`.
    Clap,
}

/// One accepted flag: its names (long, and a short one for clap), and whether it
/// takes a value.
#[derive(Clone, Copy, Debug)]
pub struct FlagSpec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub takes_value: bool,
}

pub const fn flag(name: &'static str, aliases: &'static [&'static str], takes_value: bool) -> FlagSpec {
    FlagSpec { name, aliases, takes_value }
}

/// Parsed flags by canonical name; a repeated flag keeps its last value.
pub fn parse_flags(args: &[String], specs: &[FlagSpec], style: FlagStyle) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let Some(body) = arg.strip_prefix('-') else {
            return Err(match style {
                FlagStyle::Go => format!("'{arg}' is an invalid flag"),
                FlagStyle::Clap => {
                    format!("error: Found argument '{arg}' which wasn't expected, or isn't valid in this context")
                }
            });
        };
        let long = body.strip_prefix('-');
        let (name, inline) = match style {
            FlagStyle::Go => {
                let n = long.unwrap_or(body);
                match n.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (n.to_owned(), None),
                }
            }
            FlagStyle::Clap => match long {
                Some(n) => match n.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (n.to_owned(), None),
                },
                None => {
                    let mut cs = body.chars();
                    let short: String = cs.next().map(String::from).unwrap_or_default();
                    let rest: String = cs.collect();
                    let rest = rest.strip_prefix('=').map(str::to_owned).unwrap_or(rest);
                    (short, (!rest.is_empty()).then_some(rest))
                }
            },
        };
        let Some(spec) = specs.iter().find(|s| s.name == name || s.aliases.contains(&name.as_str())) else {
            return Err(match style {
                FlagStyle::Go => format!("flag provided but not defined: -{name}"),
                FlagStyle::Clap => {
                    format!("error: Found argument '{arg}' which wasn't expected, or isn't valid in this context")
                }
            });
        };
        let value = if !spec.takes_value {
            inline.unwrap_or_else(|| "true".into())
        } else if let Some(v) = inline {
            v
        } else if i < args.len() {
            i += 1;
            args[i - 1].clone()
        } else {
            return Err(match style {
                FlagStyle::Go => format!("flag needs an argument: -{name}"),
                FlagStyle::Clap => {
                    format!("error: The argument '--{}' requires a value but none was supplied", spec.name)
                }
            });
        };
        out.insert(spec.name.to_owned(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn direct_exec_and_entrypoint() {
        let inv = invocation(&s(&["/pd-server", "--name=a"]), &s(&["--join=x"]), "/pd-server", &[]).unwrap();
        assert_eq!(inv.binary(), "pd-server");
        assert_eq!(inv.args, s(&["--name=a", "--join=x"]));
        let inv = invocation(&[], &s(&["--pd=p"]), "/tikv-server", &[]).unwrap();
        assert_eq!(inv.program, "/tikv-server");
        assert_eq!(inv.args, s(&["--pd=p"]));
    }

    #[test]
    fn shell_wrappers_expand_variables_and_quotes() {
        let env = vec![("POD_NAME".to_string(), "pd-0".to_string()), ("NS".to_string(), "db".to_string())];
        let script = "set -e\necho starting\nexec /pd-server --name=${POD_NAME} \\\n  --advertise-client-urls=\"http://$POD_NAME.pd-peer.$NS.svc:2379\" --data-dir '/var/lib/pd'";
        let inv = invocation(&s(&["/bin/sh", "-c", script]), &[], "/pd-server", &env).unwrap();
        assert_eq!(inv.binary(), "pd-server");
        assert_eq!(
            inv.args,
            s(&["--name=pd-0", "--advertise-client-urls=http://pd-0.pd-peer.db.svc:2379", "--data-dir", "/var/lib/pd"])
        );
        assert!(invocation(&s(&["sh", "-c", "exec /pd-server --name='x"]), &[], "", &env).is_err());
    }

    const SPECS: &[FlagSpec] =
        &[flag("config", &["C"], true), flag("pd", &["pd-endpoints"], true), flag("version", &["V"], false)];

    #[test]
    fn flags_in_both_styles() {
        let f = parse_flags(&s(&["--config", "/a", "-pd=x", "-V"]), SPECS, FlagStyle::Go).unwrap();
        assert_eq!(f["config"], "/a");
        assert_eq!(f["pd"], "x");
        assert_eq!(f["version"], "true");
        let f = parse_flags(&s(&["-C", "/a", "--pd-endpoints=y"]), SPECS, FlagStyle::Clap).unwrap();
        assert_eq!((f["config"].as_str(), f["pd"].as_str()), ("/a", "y"));
        assert_eq!(
            parse_flags(&s(&["--nope=1"]), SPECS, FlagStyle::Go).unwrap_err(),
            "flag provided but not defined: -nope"
        );
        assert!(parse_flags(&s(&["--nope"]), SPECS, FlagStyle::Clap).unwrap_err().contains("wasn't expected"));
        assert!(parse_flags(&s(&["--config"]), SPECS, FlagStyle::Clap).unwrap_err().contains("requires a value"));
    }
}
