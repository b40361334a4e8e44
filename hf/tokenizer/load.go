package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// jobj is a JSON object being read; the first error sticks in *err and names
// the JSON path of the offending key.
type jobj struct {
	path string
	m    map[string]json.RawMessage
	err  *error
}

func (o jobj) fail(format string, args ...any) {
	if *o.err == nil {
		*o.err = fmt.Errorf("tokenizer: %s: %s", o.path, fmt.Sprintf(format, args...))
	}
}

func (o jobj) raw(key string) (json.RawMessage, bool) {
	r, ok := o.m[key]
	if !ok || isNull(r) {
		return nil, false
	}
	return r, true
}

func isNull(r json.RawMessage) bool { return len(r) == 0 || string(bytes.TrimSpace(r)) == "null" }

func (o jobj) decode(key string, dst any) bool {
	r, ok := o.raw(key)
	if !ok {
		return false
	}
	if err := json.Unmarshal(r, dst); err != nil {
		o.fail("key %q: %v", key, err)
		return false
	}
	return true
}

func (o jobj) str(key, def string) string {
	v := def
	o.decode(key, &v)
	return v
}

func (o jobj) boolean(key string, def bool) bool {
	v := def
	o.decode(key, &v)
	return v
}

func (o jobj) integer(key string, def int) int {
	v := def
	o.decode(key, &v)
	return v
}

func (o jobj) char(key string, def rune) rune {
	s := o.str(key, string(def))
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || n != len(s) {
		o.fail("key %q must be a single character, got %q", key, s)
		return def
	}
	return r
}

// object parses raw as a JSON object at path.
func object(raw json.RawMessage, path string, err *error) (jobj, bool) {
	o := jobj{path: path, err: err}
	if isNull(raw) {
		return o, false
	}
	if e := json.Unmarshal(raw, &o.m); e != nil {
		o.fail("expected an object: %v", e)
		return o, false
	}
	return o, true
}

func (o jobj) child(key string) (jobj, bool) {
	r, ok := o.raw(key)
	if !ok {
		return jobj{path: o.path + "." + key, err: o.err}, false
	}
	return object(r, o.path+"."+key, o.err)
}

// list returns the elements of the array at key.
func (o jobj) list(key string) []json.RawMessage {
	var l []json.RawMessage
	o.decode(key, &l)
	return l
}

func (o jobj) typ() string {
	var t string
	o.decode("type", &t)
	return t
}

func (o jobj) unknownType(kind, t string) {
	if t == "" {
		o.fail("%s has no \"type\"", kind)
		return
	}
	o.fail("unsupported %s type %q", kind, t)
}

// syntaxError names the line and column of a JSON syntax error.
func syntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	off := int64(-1)
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 {
		return fmt.Errorf("tokenizer: invalid tokenizer.json: %v", err)
	}
	line, col := 1, 1
	for _, c := range data[:min(int(off), len(data))] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Errorf("tokenizer: invalid tokenizer.json at line %d, column %d: %v", line, col, err)
}

// FromJSON builds a tokenizer from the contents of a tokenizer.json file.
func FromJSON(data []byte, opts ...Option) (*Tokenizer, error) {
	var lo loadOptions
	for _, o := range opts {
		o(&lo)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, syntaxError(data, err)
	}
	var err error
	root := jobj{path: "tokenizer.json", m: top, err: &err}
	t := &Tokenizer{bos: -1, eos: -1}

	var added []AddedToken
	for i, r := range root.list("added_tokens") {
		o, ok := object(r, fmt.Sprintf("added_tokens[%d]", i), &err)
		if !ok {
			break
		}
		a := AddedToken{Normalized: true}
		if _, has := o.raw("id"); !has {
			o.fail("missing \"id\"")
		}
		if _, has := o.raw("content"); !has {
			o.fail("missing \"content\"")
		}
		a.ID = o.integer("id", 0)
		a.Content = o.str("content", "")
		a.SingleWord = o.boolean("single_word", false)
		a.LStrip = o.boolean("lstrip", false)
		a.RStrip = o.boolean("rstrip", false)
		a.Special = o.boolean("special", false)
		a.Normalized = o.boolean("normalized", !a.Special)
		if a.ID < 0 {
			o.fail("negative id %d", a.ID)
		}
		added = append(added, a)
	}
	if err != nil {
		return nil, err
	}

	if r, ok := root.raw("normalizer"); ok {
		t.normalizer = parseNormalizer(r, "normalizer", &err)
	}
	if r, ok := root.raw("pre_tokenizer"); ok {
		t.pre = parsePreTokenizer(r, "pre_tokenizer", &err)
	}
	if r, ok := root.raw("model"); ok {
		t.model = t.parseModel(r, "model", &lo, &err)
	} else if err == nil {
		root.fail("missing \"model\"")
	}
	if err != nil {
		return nil, err
	}
	if r, ok := root.raw("post_processor"); ok {
		t.post = t.parsePost(r, "post_processor", &err)
	}
	if r, ok := root.raw("decoder"); ok {
		t.decoder = parseDecoder(r, "decoder", &err)
	}
	if r, ok := root.raw("truncation"); ok {
		t.truncation = parseTruncation(r, &err)
	}
	if r, ok := root.raw("padding"); ok {
		t.padding = parsePadding(r, &err)
	}
	if err != nil {
		return nil, err
	}
	if lo.setTrunc {
		t.truncation = lo.truncation
	}
	if lo.setPad {
		t.padding = lo.padding
	}
	added = assignAddedIDs(added, t.model)
	t.added = newAddedVocab(added, t.normalizer)
	t.findBOSEOS()
	return t, nil
}

// assignAddedIDs gives the added tokens the ids Hugging Face gives them when
// it loads tokenizer.json (AddedVocabulary::add_tokens), which ignores the
// "id" written in the file: a token already in the model's vocabulary
// takes its id there; another one takes the vocabulary size, or one more
// than the largest added id when that is already past it. For files written
// by HF the two agree. Repeated identical entries and empty contents are
// dropped, as HF does.
func assignAddedIDs(added []AddedToken, m model) []AddedToken {
	byContent := map[string]int{}
	maxID := -1
	size := m.entries()
	out := added[:0]
	seen := map[AddedToken]bool{}
	for _, a := range added {
		if a.Content == "" {
			continue
		}
		key := a
		key.ID = 0
		if seen[key] {
			continue
		}
		seen[key] = true
		id, ok := byContent[a.Content]
		if !ok {
			id, ok = m.tokenToID(a.Content)
		}
		if !ok {
			switch {
			case maxID < 0:
				id = size
			case maxID >= size || size == 0:
				id = maxID + 1
			default:
				id = size
			}
		}
		a.ID = id
		byContent[a.Content] = id
		maxID = max(maxID, id)
		out = append(out, a)
	}
	return out
}

func (t *Tokenizer) parseModel(raw json.RawMessage, path string, lo *loadOptions, err *error) model {
	o, ok := object(raw, path, err)
	if !ok {
		return nil
	}
	typ := o.typ()
	if typ == "" { // old files: infer from the shape
		switch {
		case o.m["merges"] != nil:
			typ = "BPE"
		case o.m["max_input_chars_per_word"] != nil:
			typ = "WordPiece"
		default:
			var l []json.RawMessage
			if json.Unmarshal(o.m["vocab"], &l) == nil {
				typ = "Unigram"
			} else {
				typ = "WordLevel"
			}
		}
	}
	t.modelName = typ
	vocab := map[string]int{}
	if typ == "BPE" || typ == "WordPiece" || typ == "WordLevel" {
		if !o.decode("vocab", &vocab) && *err == nil {
			o.fail("missing \"vocab\"")
		}
	}
	switch typ {
	case "BPE":
		c := bpeConfig{
			vocab:        vocab,
			unkToken:     o.str("unk_token", ""),
			prefix:       o.str("continuing_subword_prefix", ""),
			suffix:       o.str("end_of_word_suffix", ""),
			fuseUnk:      o.boolean("fuse_unk", false),
			byteFallback: o.boolean("byte_fallback", false),
			ignoreMerges: o.boolean("ignore_merges", false),
			cacheSize:    lo.cacheSize,
		}
		var dropout float64
		o.decode("dropout", &dropout)
		c.dropout = dropout
		if raw, ok := o.raw("merges"); ok {
			if fast, ok := fastMerges(raw); ok {
				c.merges = fast
				goto built
			}
		}
		for i, r := range o.list("merges") {
			var s string
			var pair []string
			switch {
			case json.Unmarshal(r, &s) == nil:
				a, b, found := cutSpace(s)
				if !found {
					o.fail("merges[%d] %q is not of the form \"a b\"", i, s)
					return nil
				}
				c.merges = append(c.merges, [2]string{a, b})
			case json.Unmarshal(r, &pair) == nil && len(pair) == 2:
				c.merges = append(c.merges, [2]string{pair[0], pair[1]})
			default:
				o.fail("merges[%d] must be \"a b\" or [\"a\", \"b\"], got %s", i, truncateJSON(r))
				return nil
			}
		}
	built:
		if *err != nil {
			return nil
		}
		if lo.cacheSizeSet && lo.cacheSize == 0 {
			c.cacheSize = -1
		}
		m, e := newBPE(c)
		if e != nil {
			o.fail("%v", e)
			return nil
		}
		t.unkToken = c.unkToken
		return m
	case "WordPiece":
		v, e := newVocabulary(vocab)
		if e != nil {
			o.fail("%v", e)
			return nil
		}
		m := &wordPieceModel{vocabulary: v,
			unkToken: o.str("unk_token", "[UNK]"),
			prefix:   o.str("continuing_subword_prefix", "##"),
			maxChars: o.integer("max_input_chars_per_word", 100)}
		t.unkToken = m.unkToken
		return m
	case "WordLevel":
		v, e := newVocabulary(vocab)
		if e != nil {
			o.fail("%v", e)
			return nil
		}
		m := &wordLevelModel{vocabulary: v, unkToken: o.str("unk_token", "<unk>")}
		t.unkToken = m.unkToken
		return m
	case "Unigram":
		var raw [][2]json.RawMessage
		if !o.decode("vocab", &raw) {
			if *err == nil {
				o.fail("missing \"vocab\"")
			}
			return nil
		}
		pieces := make([]string, len(raw))
		scores := make([]float64, len(raw))
		for i, r := range raw {
			if json.Unmarshal(r[0], &pieces[i]) != nil || json.Unmarshal(r[1], &scores[i]) != nil {
				o.fail("vocab[%d] must be [\"piece\", score]", i)
				return nil
			}
		}
		unkID := o.integer("unk_id", -1)
		m, e := newUnigram(pieces, scores, unkID, o.boolean("byte_fallback", false))
		if e != nil {
			o.fail("%v", e)
			return nil
		}
		if unkID >= 0 {
			t.unkToken = pieces[unkID]
		}
		return m
	}
	o.unknownType("model", typ)
	return nil
}

// fastMerges parses a merges array (["a b", …] or [["a","b"], …]) without
// encoding/json's per-element overhead. ok is false for anything unusual
// (escapes are fine; bad shapes are not), and the caller then takes the
// generic path, which reports errors precisely.
func fastMerges(raw []byte) ([][2]string, bool) {
	p := 0
	ws := func() {
		for p < len(raw) && (raw[p] == ' ' || raw[p] == '\n' || raw[p] == '\t' || raw[p] == '\r') {
			p++
		}
	}
	str := func() (string, bool) {
		if p >= len(raw) || raw[p] != '"' {
			return "", false
		}
		start := p
		p++
		esc := false
		for p < len(raw) && raw[p] != '"' {
			if raw[p] == '\\' {
				esc = true
				p++
			}
			p++
		}
		if p >= len(raw) {
			return "", false
		}
		p++
		if !esc {
			return string(raw[start+1 : p-1]), true
		}
		var s string
		if json.Unmarshal(raw[start:p], &s) != nil {
			return "", false
		}
		return s, true
	}
	ws()
	if p >= len(raw) || raw[p] != '[' {
		return nil, false
	}
	p++
	out := make([][2]string, 0, len(raw)/12)
	for {
		ws()
		if p < len(raw) && raw[p] == ']' && len(out) == 0 {
			p++
			break
		}
		var m [2]string
		switch {
		case p < len(raw) && raw[p] == '"':
			s, ok := str()
			if !ok {
				return nil, false
			}
			a, b, found := cutSpace(s)
			if !found {
				return nil, false
			}
			m = [2]string{a, b}
		case p < len(raw) && raw[p] == '[':
			p++
			ws()
			a, ok := str()
			if !ok {
				return nil, false
			}
			ws()
			if p >= len(raw) || raw[p] != ',' {
				return nil, false
			}
			p++
			ws()
			b, ok := str()
			if !ok {
				return nil, false
			}
			ws()
			if p >= len(raw) || raw[p] != ']' {
				return nil, false
			}
			p++
			m = [2]string{a, b}
		default:
			return nil, false
		}
		out = append(out, m)
		ws()
		if p < len(raw) && raw[p] == ',' {
			p++
			continue
		}
		if p < len(raw) && raw[p] == ']' {
			p++
			break
		}
		return nil, false
	}
	ws()
	return out, p == len(raw)
}

func cutSpace(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

func truncateJSON(r json.RawMessage) string {
	if len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return string(r)
}

// pattern reads a {"String": s} or {"Regex": r} pattern.
func (o jobj) pattern(key string) (literal string, re *gregex, ok bool) {
	p, has := o.child(key)
	if !has {
		if *o.err == nil {
			o.fail("missing %q", key)
		}
		return "", nil, false
	}
	if r, has := p.raw("String"); has {
		if e := json.Unmarshal(r, &literal); e != nil {
			p.fail("String: %v", e)
			return "", nil, false
		}
		return literal, nil, true
	}
	if r, has := p.raw("Regex"); has {
		var src string
		if e := json.Unmarshal(r, &src); e != nil {
			p.fail("Regex: %v", e)
			return "", nil, false
		}
		g, e := compileRegex(src)
		if e != nil {
			p.fail("%v", e)
			return "", nil, false
		}
		return "", g, true
	}
	p.fail("pattern must have a \"String\" or \"Regex\" key")
	return "", nil, false
}

func parseNormalizer(raw json.RawMessage, path string, err *error) normalizer {
	o, ok := object(raw, path, err)
	if !ok {
		return nil
	}
	switch typ := o.typ(); typ {
	case "Sequence":
		var seq seqNormalizer
		for i, r := range o.list("normalizers") {
			if n := parseNormalizer(r, fmt.Sprintf("%s.normalizers[%d]", path, i), err); n != nil {
				seq = append(seq, n)
			}
		}
		return seq
	case "Prepend":
		return prependNormalizer{o.str("prepend", "")}
	case "Append":
		return appendNormalizer{o.str("append", "")}
	case "Replace":
		lit, re, ok := o.pattern("pattern")
		if !ok {
			return nil
		}
		return &replaceNormalizer{literal: lit, re: regexOf(re), content: o.str("content", "")}
	case "NFC":
		return unicodeNormalizer{norm.NFC}
	case "NFD":
		return unicodeNormalizer{norm.NFD}
	case "NFKC":
		return unicodeNormalizer{norm.NFKC}
	case "NFKD":
		return unicodeNormalizer{norm.NFKD}
	case "Lowercase":
		return lowercaseNormalizer{}
	case "Strip":
		return stripNormalizer{o.boolean("strip_left", true), o.boolean("strip_right", true)}
	case "StripAccents":
		return stripAccentsNormalizer{}
	case "BertNormalizer":
		lower := o.boolean("lowercase", true)
		return bertNormalizer{
			cleanText:    o.boolean("clean_text", true),
			chineseChars: o.boolean("handle_chinese_chars", true),
			stripAccents: o.boolean("strip_accents", lower),
			lowercase:    lower,
		}
	case "ByteLevel":
		return byteLevelNormalizer{}
	case "Nmt":
		return nmtNormalizer{}
	default:
		o.unknownType("normalizer", typ)
	}
	return nil
}

func regexOf(g *gregex) *regexp.Regexp {
	if g == nil {
		return nil
	}
	return g.re
}

func parseBehavior(o jobj, def Behavior) Behavior {
	s := o.str("behavior", "")
	if s == "" {
		return def
	}
	b, ok := behaviorNames[s]
	if !ok {
		o.fail("unknown behavior %q", s)
	}
	return b
}

func parsePrependScheme(o jobj) PrependScheme {
	scheme := PrependAlways
	switch s := o.str("prepend_scheme", ""); s {
	case "", "always":
	case "first":
		scheme = PrependFirst
	case "never":
		scheme = PrependNever
	default:
		o.fail("unknown prepend_scheme %q", s)
	}
	if r, ok := o.raw("add_prefix_space"); ok {
		var aps bool
		if json.Unmarshal(r, &aps) == nil && !aps {
			if o.str("prepend_scheme", "") != "" && scheme != PrependNever {
				o.fail("add_prefix_space false does not match prepend_scheme %q", o.str("prepend_scheme", ""))
			}
			scheme = PrependNever
		}
	}
	return scheme
}

func parsePreTokenizer(raw json.RawMessage, path string, err *error) preTokenizer {
	o, ok := object(raw, path, err)
	if !ok {
		return nil
	}
	switch typ := o.typ(); typ {
	case "Sequence":
		var seq seqPre
		for i, r := range o.list("pretokenizers") {
			if p := parsePreTokenizer(r, fmt.Sprintf("%s.pretokenizers[%d]", path, i), err); p != nil {
				seq = append(seq, p)
			}
		}
		return seq
	case "ByteLevel":
		return byteLevelPre{addPrefixSpace: o.boolean("add_prefix_space", true), useRegex: o.boolean("use_regex", true)}
	case "Metaspace":
		return metaspacePre{replacement: string(o.char("replacement", '▁')), scheme: parsePrependScheme(o), split: o.boolean("split", true)}
	case "Split":
		lit, re, ok := o.pattern("pattern")
		if !ok {
			return nil
		}
		return splitPre{literal: lit, re: re, behavior: parseBehavior(o, Isolated), invert: o.boolean("invert", false)}
	case "Digits":
		b := Contiguous
		if o.boolean("individual_digits", false) {
			b = Isolated
		}
		return runePre{pred: isNumber, behavior: b}
	case "Whitespace":
		return whitespacePre{}
	case "WhitespaceSplit":
		return runePre{pred: isSpace, behavior: Removed}
	case "Punctuation":
		return runePre{pred: isPunctuation, behavior: parseBehavior(o, Isolated)}
	case "BertPreTokenizer":
		return seqPre{runePre{pred: isSpace, behavior: Removed}, runePre{pred: isPunctuation, behavior: Isolated}}
	case "CharDelimiterSplit":
		d := o.char("delimiter", ' ')
		return runePre{pred: func(r rune) bool { return r == d }, behavior: Removed}
	default:
		o.unknownType("pre_tokenizer", typ)
	}
	return nil
}

// idPair reads ["token", id].
func (o jobj) idPair(key string) (string, int) {
	var l []json.RawMessage
	if !o.decode(key, &l) {
		if *o.err == nil {
			o.fail("missing %q", key)
		}
		return "", 0
	}
	var s string
	var id int
	if len(l) != 2 || json.Unmarshal(l[0], &s) != nil || json.Unmarshal(l[1], &id) != nil {
		o.fail("%q must be [\"token\", id]", key)
	}
	return s, id
}

func (t *Tokenizer) parsePost(raw json.RawMessage, path string, err *error) postProcessor {
	o, ok := object(raw, path, err)
	if !ok {
		return nil
	}
	switch typ := o.typ(); typ {
	case "TemplateProcessing":
		tp := &templateProcessor{specials: map[string]specialPiece{}}
		if sp, ok := o.child("special_tokens"); ok {
			keys := make([]string, 0, len(sp.m))
			for k := range sp.m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				so, ok := sp.child(k)
				if !ok {
					continue
				}
				var p specialPiece
				so.decode("ids", &p.ids)
				so.decode("tokens", &p.tokens)
				if len(p.ids) != len(p.tokens) {
					so.fail("has %d ids but %d tokens", len(p.ids), len(p.tokens))
				}
				tp.specials[k] = p
			}
		}
		tp.single = parseTemplate(o, "single", tp.specials)
		tp.pair = parseTemplate(o, "pair", tp.specials)
		return tp
	case "RobertaProcessing", "BertProcessing":
		c := &clsSepProcessor{roberta: typ == "RobertaProcessing"}
		c.sep, c.sepID = o.idPair("sep")
		c.cls, c.clsID = o.idPair("cls")
		c.trimOffsets = o.boolean("trim_offsets", true)
		c.addPrefixSpace = o.boolean("add_prefix_space", true)
		return c
	case "ByteLevel":
		return byteLevelPost{trimOffsets: o.boolean("trim_offsets", true), addPrefixSpace: o.boolean("add_prefix_space", true)}
	case "Sequence":
		var seq seqProcessor
		for i, r := range o.list("processors") {
			if p := t.parsePost(r, fmt.Sprintf("%s.processors[%d]", path, i), err); p != nil {
				seq = append(seq, p)
			}
		}
		return seq
	default:
		o.unknownType("post_processor", typ)
	}
	return nil
}

// parseTemplate reads a template: a list of {"SpecialToken": {...}} and
// {"Sequence": {...}} pieces, or the string form "<s> $A </s>".
func parseTemplate(o jobj, key string, specials map[string]specialPiece) []templatePiece {
	r, ok := o.raw(key)
	if !ok {
		return nil
	}
	var out []templatePiece
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(r, &items); err != nil {
		o.fail("%s: %v", key, err)
		return nil
	}
	for i, it := range items {
		ip := jobj{path: fmt.Sprintf("%s.%s[%d]", o.path, key, i), m: it, err: o.err}
		if sq, ok := ip.child("Sequence"); ok {
			id := sq.str("id", "A")
			if id != "A" && id != "B" {
				sq.fail("sequence id must be A or B, got %q", id)
			}
			out = append(out, templatePiece{isSeq: true, seq: int(id[0] - 'A'), typeID: sq.integer("type_id", 0)})
		} else if st, ok := ip.child("SpecialToken"); ok {
			name := st.str("id", "")
			if _, known := specials[name]; !known {
				st.fail("special token %q is not in special_tokens", name)
			}
			out = append(out, templatePiece{name: name, typeID: st.integer("type_id", 0)})
		} else {
			ip.fail("expected a Sequence or SpecialToken piece")
		}
	}
	return out
}

func parseDecoder(raw json.RawMessage, path string, err *error) decoder {
	o, ok := object(raw, path, err)
	if !ok {
		return nil
	}
	switch typ := o.typ(); typ {
	case "Sequence":
		var seq seqDec
		for i, r := range o.list("decoders") {
			if d := parseDecoder(r, fmt.Sprintf("%s.decoders[%d]", path, i), err); d != nil {
				seq = append(seq, d)
			}
		}
		return seq
	case "ByteLevel":
		return byteLevelDec{}
	case "Metaspace":
		return metaspaceDec{replacement: o.char("replacement", '▁'), scheme: parsePrependScheme(o)}
	case "Replace":
		lit, re, ok := o.pattern("pattern")
		if !ok {
			return nil
		}
		return replaceDec{&replaceNormalizer{literal: lit, re: regexOf(re), content: o.str("content", "")}}
	case "ByteFallback":
		return byteFallbackDec{}
	case "Fuse":
		return fuseDec{}
	case "Strip":
		return stripDec{content: o.char("content", ' '), start: o.integer("start", 0), stop: o.integer("stop", 0)}
	case "WordPiece":
		return wordPieceDec{prefix: o.str("prefix", "##"), cleanup: o.boolean("cleanup", true)}
	case "BPEDecoder":
		return bpeDec{suffix: o.str("suffix", "</w>")}
	default:
		o.unknownType("decoder", typ)
	}
	return nil
}

func parseDirection(o jobj) Direction {
	switch s := o.str("direction", "Right"); s {
	case "Right":
		return Right
	case "Left":
		return Left
	default:
		o.fail("unknown direction %q", s)
	}
	return Right
}

func parseTruncation(raw json.RawMessage, err *error) *Truncation {
	o, ok := object(raw, "truncation", err)
	if !ok {
		return nil
	}
	tr := &Truncation{MaxLength: o.integer("max_length", 512), Stride: o.integer("stride", 0), Direction: parseDirection(o)}
	switch s := o.str("strategy", "LongestFirst"); s {
	case "LongestFirst":
		tr.Strategy = LongestFirst
	case "OnlyFirst":
		tr.Strategy = OnlyFirst
	case "OnlySecond":
		tr.Strategy = OnlySecond
	default:
		o.fail("unknown strategy %q", s)
	}
	if tr.MaxLength < 0 || tr.Stride < 0 {
		o.fail("max_length and stride must not be negative")
	}
	return tr
}

func parsePadding(raw json.RawMessage, err *error) *Padding {
	o, ok := object(raw, "padding", err)
	if !ok {
		return nil
	}
	p := &Padding{
		Direction:       parseDirection(o),
		PadToMultipleOf: o.integer("pad_to_multiple_of", 0),
		PadID:           o.integer("pad_id", 0),
		PadTypeID:       o.integer("pad_type_id", 0),
		PadToken:        o.str("pad_token", "[PAD]"),
	}
	if r, ok := o.raw("strategy"); ok {
		var s string
		var fixed struct {
			Fixed *int `json:"Fixed"`
		}
		switch {
		case json.Unmarshal(r, &s) == nil && s == "BatchLongest":
			p.Strategy = PadBatchLongest
		case json.Unmarshal(r, &fixed) == nil && fixed.Fixed != nil:
			p.Strategy, p.Length = PadFixed, *fixed.Fixed
		default:
			o.fail("unknown strategy %s", truncateJSON(r))
		}
	}
	return p
}

// findBOSEOS derives BOS/EOS from the post-processor, then from names.
func (t *Tokenizer) findBOSEOS() {
	var visit func(p postProcessor)
	visit = func(p postProcessor) {
		switch p := p.(type) {
		case *templateProcessor:
			seen := false
			for _, pc := range p.single {
				if pc.isSeq {
					seen = true
					continue
				}
				ids := p.specials[pc.name].ids
				if len(ids) == 0 {
					continue
				}
				if !seen && t.bos < 0 {
					t.bos = ids[0]
				}
				if seen {
					t.eos = ids[len(ids)-1]
				}
			}
		case *clsSepProcessor:
			t.bos, t.eos = p.clsID, p.sepID
		case seqProcessor:
			for _, q := range p {
				visit(q)
			}
		}
	}
	if t.post != nil {
		visit(t.post)
	}
	if t.bos < 0 {
		t.bos = t.findSpecial("<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", "[CLS]", "<|im_start|>")
	}
	if t.eos < 0 {
		t.eos = t.findSpecial("</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>", "[SEP]", "<|eot_id|>", "<|im_end|>")
	}
}
