// usage: node ref.js in.json out.json ; in: {tokenizer: path|json string, texts: [..], pairs: [[a,b]..]}
const { Tokenizer } = require('tokenizers');
const fs = require('fs');
(async () => {
  const inp = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const tk = inp.tokenizer_json ? Tokenizer.fromString(inp.tokenizer_json) : Tokenizer.fromFile(inp.tokenizer);
  const out = [];
  for (const t of inp.texts) {
    const e = await tk.encode(t, null, { addSpecialTokens: true });
    const e2 = await tk.encode(t, null, { addSpecialTokens: false });
    const d = await tk.decode(e.getIds(), true);
    out.push({ text: t, ids: e.getIds(), ids_no_special: e2.getIds(), decoded: d, tokens: e2.getTokens(), offsets: e.getOffsets(), words: e.getWordIds() });
  }
  const pairs = [];
  for (const [a, b] of (inp.pairs || [])) {
    const e = await tk.encode(a, b, { addSpecialTokens: true });
    pairs.push({ a, b, ids: e.getIds(), type_ids: e.getTypeIds() });
  }
  fs.writeFileSync(process.argv[3], JSON.stringify({ rows: out, pairs }));
})();
