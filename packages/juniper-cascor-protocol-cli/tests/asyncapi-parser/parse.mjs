// Parse AsyncAPI documents with the official parser (`nox -s asyncapi` runs it): print every
// diagnostic, and exit 1 when any is an error or a document cannot be read or parsed.
//   node parse.mjs DOCUMENT...
import { DiagnosticSeverity, Parser, fromFile } from "@asyncapi/parser";

const SEVERITY = {
  [DiagnosticSeverity.Error]: "error",
  [DiagnosticSeverity.Warning]: "warning",
  [DiagnosticSeverity.Information]: "information",
  [DiagnosticSeverity.Hint]: "hint",
};

const paths = process.argv.slice(2);
if (paths.length === 0) {
  console.error("usage: node parse.mjs DOCUMENT...");
  process.exit(2);
}

const parser = new Parser();
let failed = false;
for (const path of paths) {
  let output;
  try {
    output = await fromFile(parser, path).parse();
  } catch (error) {
    console.log(`${path}: cannot be read: ${error.message}`);
    failed = true;
    continue;
  }
  const { document, diagnostics } = output;
  for (const diagnostic of diagnostics) {
    const where = diagnostic.path.join("/") || "(document)";
    const severity = SEVERITY[diagnostic.severity];
    console.log(`${path}: ${severity} ${diagnostic.code} at ${where}: ${diagnostic.message}`);
  }
  const errors = diagnostics.filter((item) => item.severity === DiagnosticSeverity.Error);
  if (document === undefined || errors.length > 0) {
    failed = true;
    console.log(`${path}: INVALID, ${errors.length} errors`);
  } else {
    console.log(`${path}: valid AsyncAPI ${document.version()}, no error`);
  }
}
process.exit(failed ? 1 : 0);
