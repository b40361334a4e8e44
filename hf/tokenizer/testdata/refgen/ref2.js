const { Tokenizer } = require('tokenizers');
const fs = require('fs');
const enc2obj = (e) => ({ ids: e.getIds(), type_ids: e.getTypeIds(), attention: e.getAttentionMask(), special: e.getSpecialTokensMask(),
  overflow: e.getOverflowing().map(o => ({ ids: o.getIds(), type_ids: o.getTypeIds(), attention: o.getAttentionMask() })) });
(async () => {
  const inp = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const out = [];
  for (const cfg of inp.configs) {
    const tk = Tokenizer.fromString(cfg.tokenizer_json);
    const res = { name: cfg.name, single: [], pairs: [], batch: null };
    for (const t of inp.texts) {
      try { res.single.push(enc2obj(await tk.encode(t, null, { addSpecialTokens: true }))); } catch (e) { res.single.push({ error: String(e) }); }
    }
    for (const [a, b] of (cfg.no_pairs ? [] : inp.pairs)) {
      try { res.pairs.push(enc2obj(await tk.encode(a, b, { addSpecialTokens: true }))); } catch (e) { res.pairs.push({ error: String(e) }); }
    }
    try { res.batch = (await tk.encodeBatch(inp.texts, { addSpecialTokens: true })).map(enc2obj); } catch (e) { res.batch = { error: String(e) }; }
    out.push(res);
  }
  fs.writeFileSync(process.argv[3], JSON.stringify(out));
})();
