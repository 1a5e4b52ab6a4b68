// Parse Mermaid text with Mermaid's own parser, headless: `node parse.mjs < diagram.mmd`, or
// `node parse.mjs A.mmd B.mmd ...`. Exits 1 with each error on stderr when one does not parse.
// Mermaid sanitises labels with DOMPurify, which needs a DOM: jsdom provides one (no browser).
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const { window } = new JSDOM('');
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import('mermaid');

const sources = process.argv.length > 2
  ? process.argv.slice(2).map((file) => [file, readFileSync(file, 'utf8')])
  : [['<stdin>', readFileSync(0, 'utf8')]];
let failed = 0;
for (const [name, text] of sources) {
  try {
    const result = await mermaid.parse(text);
    console.log(`${name}: ${result.diagramType}`);
  } catch (error) {
    failed += 1;
    console.error(`${name}: ${error.message ?? error}`);
  }
}
process.exit(failed ? 1 : 0);
