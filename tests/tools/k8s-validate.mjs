// k8s-validate.mjs - validate Kubernetes manifests against the API's
// schemas (npm kubernetes-models, pinned in package-lock.json) for
// tests/e2e/test_kubernetes.py:
//   node tests/tools/k8s-validate.mjs FILE.yaml...
// Prints one JSON object: {"documents": [{"file", "object", "error"}]},
// each YAML document parsed (npm yaml) and, when its apiVersion and kind
// have a model, validated ("error" null when valid).  Exit 0 when every
// document is valid, 1 otherwise, 2 on a usage or read error.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const YAML = require("yaml");

function model(apiVersion, kind) {
	// "v1" is the core group; "apps/v1" a named one.
	const path = "kubernetes-models/" + apiVersion;
	let mod;
	try {
		mod = require(path);
	} catch {
		return null;
	}
	return typeof mod[kind] === "function" ? mod[kind] : null;
}

const files = process.argv.slice(2);
if (files.length === 0) {
	console.error("usage: node k8s-validate.mjs FILE.yaml...");
	process.exit(2);
}
const out = [];
let bad = 0;
for (const file of files) {
	let docs;
	try {
		docs = YAML.parseAllDocuments(readFileSync(file, "utf8"));
	} catch (e) {
		console.error(`${file}: ${e.message}`);
		process.exit(2);
	}
	for (const doc of docs) {
		if (doc.errors.length) {
			out.push({ file, object: null, error: doc.errors[0].message });
			bad++;
			continue;
		}
		const object = doc.toJS();
		if (object === null)
			continue; // an empty document (a trailing ---)
		let error = null;
		const Model = model(object.apiVersion, object.kind);
		if (!Model) {
			error = `no model for ${object.apiVersion} ${object.kind}`;
		} else {
			try {
				new Model(object).validate();
			} catch (e) {
				error = e.message;
			}
		}
		if (error)
			bad++;
		out.push({ file, object, error });
	}
}
console.log(JSON.stringify({ documents: out }));
process.exit(bad ? 1 : 0);
