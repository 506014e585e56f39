//! Known scanner and attack-tool user agents. Real scanners announce themselves by default; this is
//! a cheap signal, not a defence against anyone who changes the header.

use super::{Category, NeedleSet, Rule, CRITICAL};

pub const SCANNER_UA: Rule = Rule::new("scanner-user-agent", Category::Scanner, CRITICAL, 1);

/// One pass over the value for all the names (see [`NeedleSet`]), not one search per name.
const TOOLS: NeedleSet = NeedleSet::new(&[
    "fuzz faster u fool",
    "sqlmap",
    "nikto",
    "nmap",
    "masscan",
    "nessus",
    "openvas",
    "acunetix",
    "netsparker",
    "wpscan",
    "dirbuster",
    "gobuster",
    "ffuf",
    "wfuzz",
    "zgrab",
    "nuclei",
    "w3af",
    "arachni",
    "havij",
    "jaeles",
    "whatweb",
    "feroxbuster",
    "skipfish",
    "commix",
    "xsstrike",
    "dirsearch",
    "burpcollaborator",
    "zmeu",
    "morfeus",
]);

pub fn check_user_agent(lower: &str, out: &mut Vec<Rule>) {
    if TOOLS.any_in(lower) && !out.contains(&SCANNER_UA) {
        out.push(SCANNER_UA);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_and_browsers() {
        let mut out = Vec::new();
        check_user_agent("sqlmap/1.7.2#stable (https://sqlmap.org)", &mut out);
        assert_eq!(out, vec![SCANNER_UA]);
        let mut out = Vec::new();
        check_user_agent("mozilla/5.0 (x11; linux x86_64) firefox/128.0", &mut out);
        check_user_agent("curl/8.5.0", &mut out);
        assert!(out.is_empty());
    }
}
