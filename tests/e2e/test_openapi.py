"""test_openapi.py - docs/openapi.json, the OpenAPI 3.1 document of the
HTTP API, says what the binary serves: the same routes and methods as the
route table (`tpwallet routes --json`, src/api/routes.h) with the rights
each method needs (x-tpwallet-right), its path parameters, problem
details (RFC 9457) for every refusal; it is valid for an independent
validator (npm @seriousme/openapi-schema-validator, pinned in
tests/tools/package-lock.json and installed by scripts/npm-deps.sh); and
the answers of a running server have the media type and top-level JSON
type the document gives them.

A route added to routes.h without its document entry, or a document path
the server lacks, fails here.
"""

import copy
import json
import os
import re
import shutil
import subprocess

from harness import TestFailure, e2e_test, run_cli, check, check_eq

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DOC = os.path.join(ROOT, "docs", "openapi.json")
TOOLS = os.path.join(ROOT, "tests", "tools")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch",
           "trace")


# Create routes whose single-event refusals are ledger results.
SINGLE_EVENT_RESULTS = {("/v1/accounts", "POST"), ("/v1/transfers", "POST")}


def load_doc():
    with open(DOC) as f:
        return json.load(f)


def server_routes():
    p = run_cli(["routes", "--json"])
    check_eq(p.returncode, 0, "tpwallet routes --json: %s" % p.stderr)
    return json.loads(p.stdout)


def operations(doc):
    """{(path, METHOD): operation} of the document."""
    return {(path, m.upper()): op
            for path, item in doc["paths"].items()
            for m, op in item.items() if m in METHODS}


@e2e_test(timeout=30)
def test_openapi_document_has_exactly_the_routes_of_the_server(ctx):
    doc = load_doc()
    check_eq(doc.get("openapi"), "3.1.0", "the OpenAPI version")
    routes = server_routes()
    check(len(routes) >= 40, "the route table: %d routes" % len(routes))
    ops = operations(doc)
    served = {}
    for r in routes:
        ms = r["methods"]
        # HEAD is answered wherever GET is, and only there; the document
        # says so once (info.description) instead of a head operation.
        check_eq("HEAD" in ms, "GET" in ms, "%s: HEAD iff GET" % r["path"])
        for m, right in ms.items():
            if m != "HEAD":
                served[(r["path"], m)] = right
    check_eq(sorted(set(ops) - set(served)), [],
             "document operations the server does not have")
    check_eq(sorted(set(served) - set(ops)), [],
             "server routes missing from docs/openapi.json")
    for key, right in served.items():
        op = ops[key]
        check_eq(op.get("x-tpwallet-right"), right,
                 "%s %s: x-tpwallet-right" % (key[1], key[0]))
        # An open route needs no credential: security [] says so.
        check_eq(op.get("security") == [], right == ["open"],
                 "%s %s: security [] exactly when open" % (key[1], key[0]))
        # Each {name} of the path is a declared path parameter.
        item = doc["paths"][key[0]]
        declared = {p["name"] for p in item.get("parameters", []) +
                    op.get("parameters", []) if p["in"] == "path"}
        check_eq(declared, set(re.findall(r"\{(\w+)\}", key[0])),
                 "%s: path parameters" % key[0])
        resps = op["responses"]
        check(any(c.startswith("2") for c in resps),
              "%s %s: a success answer" % (key[1], key[0]))
        check("default" in resps, "%s %s: a default (problem) answer"
              % (key[1], key[0]))
        for code, resp in resps.items():
            if code.startswith("2"):
                continue
            # 304 Not Modified (the console's files) is no refusal and
            # has no body.
            if code == "304":
                check("content" not in resp, "%s %s 304: no body"
                      % (key[1], key[0]))
                continue
            # A refusal is problem details; the one exception, the ledger
            # result of a single-event create (docs/api.md, Results).
            if key in SINGLE_EVENT_RESULTS and code in ("409", "422"):
                check_eq(resp["content"], {"application/json": {
                    "schema": {"$ref": "#/components/schemas/EventResult"}}},
                    "%s %s %s: a ledger result" % (key[1], key[0], code))
                continue
            schema = resp["content"]["application/problem+json"]["schema"]
            check_eq(schema, {"$ref": "#/components/schemas/Problem"},
                     "%s %s %s: problem details" % (key[1], key[0], code))
    problem = doc["components"]["schemas"]["Problem"]
    check_eq(problem["required"], ["type", "title", "status"],
             "RFC 9457 members every problem has")


def tools_node():
    """node's path, once scripts/npm-deps.sh installed tests/tools (the
    pinned checkers of test_openapi and test_kubernetes), or fail."""
    node = shutil.which("node")
    check(node is not None and shutil.which("npm") is not None,
          "node and npm are needed for tests/tools: run `make deps` "
          "(scripts/deps.sh installs Debian's nodejs and npm)")
    p = subprocess.run([os.path.join(ROOT, "scripts", "npm-deps.sh")],
                       capture_output=True, text=True, timeout=300)
    check_eq(p.returncode, 0, "scripts/npm-deps.sh: %s" % p.stderr)
    return node


def validate(path):
    node = tools_node()
    cli = os.path.join(TOOLS, "node_modules", "@seriousme",
                       "openapi-schema-validator", "bin",
                       "validate-api-cli.js")
    p = subprocess.run([node, cli, path], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout + p.stderr


@e2e_test(timeout=300)  # the first run may install the validator
def test_openapi_document_is_valid_for_an_independent_validator(ctx):
    rc, out = validate(DOC)
    check_eq(rc, 0, "validate-api docs/openapi.json: %s" % out)
    check('"valid": true' in out, "the validator's verdict: %s" % out)
    # The validator does refuse a broken document: a path parameter
    # that is not required (OpenAPI: path parameters always are).
    broken = copy.deepcopy(load_doc())
    broken["paths"]["/v1/accounts/{id}"]["parameters"][0]["required"] = \
        False
    path = ctx.path("broken.json")
    with open(path, "w") as f:
        json.dump(broken, f)
    rc, out = validate(path)
    check(rc != 0 and '"valid": false' in out,
          "a document with an optional path parameter passed: %s" % out)


def resolve(doc, schema):
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


# Queries the GETs below need to answer 2xx on a new server.
QUERIES = {
    "/v1/audit/proof/inclusion": "?index=0&size=1",
    "/v1/audit/proof/consistency": "?from=1&to=1",
}

PY_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}

# Calls beyond the GETs without a path parameter, made in this order:
# (method, template, path, body, the status the server must answer).
CALLS = [
    ("POST", "/v1/accounts", "/v1/accounts",
     {"id": "1", "ledger": 1, "code": 1}, 201),
    ("POST", "/v1/accounts", "/v1/accounts",
     [{"id": "2", "ledger": 1, "code": 1}], 200),
    ("POST", "/v1/accounts", "/v1/accounts",
     {"id": "0", "ledger": 1, "code": 1}, 422),
    ("POST", "/v1/transfers", "/v1/transfers",
     {"id": "100", "debit_account_id": "1", "credit_account_id": "2",
      "amount": "5", "ledger": 1, "code": 1}, 201),
    ("GET", "/v1/accounts/{id}", "/v1/accounts/1", None, 200),
    ("GET", "/v1/transfers/{id}", "/v1/transfers/100", None, 200),
    ("GET", "/v1/accounts/{id}", "/v1/accounts/7", None, 404),
    ("GET", "/v1/accounts/{id}/transfers", "/v1/accounts/1/transfers",
     None, 200),
    ("GET", "/v1/audit/entries/{index}", "/v1/audit/entries/0", None, 200),
    ("POST", "/v1/keys/rotate", "/v1/keys/rotate", {}, 200),
]


def check_answer(doc, method, tmpl, r):
    """r is what the document says of method on tmpl: a documented
    status, media type and, for JSON, top-level type (any branch of a
    oneOf) and required members; a refusal otherwise documented is
    problem details."""
    op = doc["paths"][tmpl][method.lower()]
    what = "%s %s %d" % (method, tmpl, r.status)
    ctype = (r.header("content-type") or "").split(";")[0].strip()
    code = str(r.status)
    if code not in op["responses"]:
        check(not code.startswith("2"), "%s: undocumented success" % what)
        check_eq(ctype, "application/problem+json", what + ": media type")
        return
    content = op["responses"][code]["content"]
    check(ctype in content, "%s: %s, documented: %s"
          % (what, ctype, sorted(content)))
    if not ctype.endswith("json"):
        return
    body = r.json()
    schema = resolve(doc, content[ctype]["schema"])
    branches = [resolve(doc, b) for b in schema.get("oneOf", [schema])]
    for b in branches:
        types = b.get("type")
        types = types if isinstance(types, list) else [types]
        if any(isinstance(body, PY_TYPES[t]) for t in types):
            for name in b.get("required", []):
                check(name in body, "%s: no %r in %r" % (what, name, body))
            return
    raise TestFailure("%s: a %s, documented %r" % (what,
                                                   type(body).__name__,
                                                   branches))


@e2e_test(timeout=60)
def test_openapi_answers_of_a_server_have_the_documented_shape(ctx):
    """Every GET without a path parameter, then the CALLS, as the
    administrator, each answer as check_answer wants it."""
    doc = load_doc()
    s = ctx.start_server()
    s.require_admin_token()
    checked = 0
    for (path, m), op in sorted(operations(doc).items()):
        if m != "GET" or "{" in path:
            continue
        r = s.get(path + QUERIES.get(path, ""))
        check_answer(doc, m, path, r)
        checked += str(r.status).startswith("2")
    check(checked >= 14, "GETs answered 2xx and checked: %d" % checked)
    for method, tmpl, path, body, status in CALLS:
        r = s.request(method, path, body=body)
        check_eq(r.status, status, "%s %s: %r" % (method, path, r))
        check_answer(doc, method, tmpl, r)
    s.stop()
