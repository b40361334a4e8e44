package tokenizer

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type M = map[string]any

// spVocab is a small SentencePiece-style BPE vocabulary: <unk> <s> </s>, the
// 256 byte tokens <0x00>..<0xFF> (ids 3..258), then pieces from 259.
func spVocab() (M, []any) {
	v := M{"<unk>": 0, "<s>": 1, "</s>": 2}
	for b := 0; b < 256; b++ {
		v[fmt.Sprintf("<0x%02X>", b)] = 3 + b
	}
	pieces := []string{"▁", "H", "e", "l", "o", "w", "r", "d", "▁H", "ll", "llo", "ello", "▁Hello", "▁w", "or", "▁wor"}
	for i, p := range pieces {
		v[p] = 259 + i
	}
	// Both merge spellings: strings and pairs.
	merges := []any{"l l", []string{"▁", "H"}, "ll o", []string{"e", "llo"}, "▁H ello", "▁ w", "o r", "▁w or"}
	return v, merges
}

const (
	idSpace = 259
	idH     = 260
	idL     = 262
	idD     = 266
	idSpH   = 267
	idEllo  = 270
	idHello = 271
	idWor   = 274
)

func byteID(b byte) int { return 3 + int(b) }

var specials3 = []M{
	{"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
	{"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
	{"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
}

var bosTemplate = M{
	"type":           "TemplateProcessing",
	"single":         []M{{"SpecialToken": M{"id": "<s>", "type_id": 0}}, {"Sequence": M{"id": "A", "type_id": 0}}},
	"pair":           []M{{"SpecialToken": M{"id": "<s>", "type_id": 0}}, {"Sequence": M{"id": "A", "type_id": 0}}, {"SpecialToken": M{"id": "<s>", "type_id": 1}}, {"Sequence": M{"id": "B", "type_id": 1}}},
	"special_tokens": M{"<s>": M{"id": "<s>", "ids": []int{1}, "tokens": []string{"<s>"}}},
}

var llamaDecoder = M{"type": "Sequence", "decoders": []M{
	{"type": "Replace", "pattern": M{"String": "▁"}, "content": " "},
	{"type": "ByteFallback"}, {"type": "Fuse"},
	{"type": "Strip", "content": " ", "start": 1, "stop": 0},
}}

// mistralJSON is a Mistral / Llama-2-new style tokenizer: no normalizer, a
// Metaspace pre-tokenizer with prepend_scheme "first" and split false.
func mistralJSON(t testing.TB, mod func(tok M)) []byte {
	v, merges := spVocab()
	tok := M{
		"version":        "1.0",
		"truncation":     nil,
		"padding":        nil,
		"added_tokens":   specials3,
		"normalizer":     nil,
		"pre_tokenizer":  M{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false},
		"post_processor": bosTemplate,
		"decoder":        llamaDecoder,
		"model": M{"type": "BPE", "dropout": nil, "unk_token": "<unk>", "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
			"vocab": v, "merges": merges},
	}
	if mod != nil {
		mod(tok)
	}
	data, err := json.Marshal(tok)
	require.NoError(t, err)
	return data
}

func mustFromJSON(t testing.TB, data []byte, opts ...Option) *Tokenizer {
	t.Helper()
	tk, err := FromJSON(data, opts...)
	require.NoError(t, err)
	return tk
}

func ids(t testing.TB, tk *Tokenizer, text string, special bool) []int {
	t.Helper()
	e, err := tk.Encode(text, special)
	require.NoError(t, err)
	return nonNil(e.IDs)
}

func TestMetaspaceFirstTokenizer(t *testing.T) {
	tk := mustFromJSON(t, mistralJSON(t, nil))
	// "▁Hello▁world": (l,l) (▁,H) (ll,o) (e,llo) (▁H,ello) (▁,w) (o,r) (▁w,or); "l" "d" stay.
	require.Equal(t, []int{1, idHello, idWor, idL, idD}, ids(t, tk, "Hello world", true))
	require.Equal(t, []int{idHello, idWor, idL, idD}, ids(t, tk, "Hello world", false))
	// 'i' and the emoji are not in the vocab: byte fallback, one token per UTF-8 byte.
	want := []int{idSpH, byteID('i'), idSpace, byteID(0xF0), byteID(0x9F), byteID(0xA4), byteID(0x97)}
	require.Equal(t, want, ids(t, tk, "Hi 🤗", false))
	s, err := tk.Decode(append([]int{1}, want...), true)
	require.NoError(t, err)
	require.Equal(t, "Hi 🤗", s)
	s, err = tk.Decode(append([]int{1}, want...), false)
	require.NoError(t, err)
	require.Equal(t, "<s> Hi 🤗", s, "the Strip decoder removes one space from the fused string only")
	// After an added token the piece does not start the input: no ▁ is prepended.
	require.Equal(t, []int{1, idH, idEllo}, ids(t, tk, "<s>Hello", false))
	// A leading space already provides the ▁.
	require.Equal(t, []int{idHello}, ids(t, tk, " Hello", false))
	require.Equal(t, []int{}, ids(t, tk, "", false))
	require.Equal(t, []int{1}, ids(t, tk, "", true))
	// Offsets: "▁Hello" covers "Hello" (the ▁ aligns to the first char).
	e, err := tk.Encode("Hello world", false)
	require.NoError(t, err)
	require.Equal(t, [][2]int{{0, 5}, {5, 9}, {9, 10}, {10, 11}}, e.Offsets)
	require.Equal(t, []string{"▁Hello", "▁wor", "l", "d"}, e.Tokens)
	require.Equal(t, 1, tk.BOS())
	require.Equal(t, 2, tk.EOS())
	require.Equal(t, 0, tk.UNK())
	require.Equal(t, 259+16, tk.VocabSize())
}

func TestMetaspaceAlwaysSplitTokenizer(t *testing.T) {
	// Llama-2 legacy: Metaspace with add_prefix_space true (prepend always), split on ▁.
	tk := mustFromJSON(t, mistralJSON(t, func(tok M) {
		tok["pre_tokenizer"] = M{"type": "Metaspace", "replacement": "▁", "add_prefix_space": true}
		tok["decoder"] = M{"type": "Metaspace", "replacement": "▁", "add_prefix_space": true}
	}))
	require.Equal(t, []int{idHello, idWor, idL, idD}, ids(t, tk, "Hello world", false))
	// prepend always: the piece after <s> gets a ▁ too.
	require.Equal(t, []int{1, idHello}, ids(t, tk, "<s>Hello", false))
	s, err := tk.Decode([]int{idHello, idWor, idL, idD}, false)
	require.NoError(t, err)
	require.Equal(t, "Hello world", s)

	// prepend_scheme never.
	tk = mustFromJSON(t, mistralJSON(t, func(tok M) {
		tok["pre_tokenizer"] = M{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": true}
		tok["decoder"] = M{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": true}
	}))
	require.Equal(t, []int{idH, idEllo, idWor, idL, idD}, ids(t, tk, "Hello world", false))
	s, err = tk.Decode([]int{idHello, idWor}, false)
	require.NoError(t, err)
	require.Equal(t, " Hello wor", s)

	_, err = FromJSON(mistralJSON(t, func(tok M) {
		tok["pre_tokenizer"] = M{"type": "Metaspace", "replacement": "▁", "add_prefix_space": false, "prepend_scheme": "always"}
	}))
	require.ErrorContains(t, err, "pre_tokenizer")
}

func TestBPEUnknowns(t *testing.T) {
	noFallback := func(fuse bool) *Tokenizer {
		return mustFromJSON(t, mistralJSON(t, func(tok M) {
			m := tok["model"].(M)
			m["byte_fallback"] = false
			m["fuse_unk"] = fuse
		}))
	}
	require.Equal(t, []int{idSpH, 0}, ids(t, noFallback(true), "Hiii", false))
	require.Equal(t, []int{idSpH, 0, 0, 0}, ids(t, noFallback(false), "Hiii", false))
	// Without unk token, unknown chars are dropped (as HF does).
	tk := mustFromJSON(t, mistralJSON(t, func(tok M) {
		m := tok["model"].(M)
		m["byte_fallback"] = false
		m["unk_token"] = nil
	}))
	require.Equal(t, []int{idSpH}, ids(t, tk, "Hiii", false))
	// unk_token missing from the vocab: an error at encode time, not a panic.
	tk = mustFromJSON(t, mistralJSON(t, func(tok M) {
		m := tok["model"].(M)
		m["byte_fallback"] = false
		m["unk_token"] = "<nope>"
	}))
	_, err := tk.Encode("Hiii", false)
	require.ErrorContains(t, err, "<nope>")
}

func TestBPEDropout(t *testing.T) {
	mk := func(dropout float64) *Tokenizer {
		return mustFromJSON(t, mistralJSON(t, func(tok M) { tok["model"].(M)["dropout"] = dropout }))
	}
	// dropout 1 skips every merge: one token per char.
	require.Equal(t, []int{idSpace, idH, 261, idL, idL, 263}, ids(t, mk(1), "Hello", false))
	require.Equal(t, []int{idHello}, ids(t, mk(0), "Hello", false))
	// With 0 < p < 1 the result is some valid segmentation of the same text.
	tk := mk(0.5)
	for i := 0; i < 20; i++ {
		s, err := tk.Decode(ids(t, tk, "Hello world", false), false)
		require.NoError(t, err)
		require.Equal(t, "Hello world", s)
	}
	_, err := FromJSON(mistralJSON(t, func(tok M) { tok["model"].(M)["dropout"] = 1.5 }))
	require.ErrorContains(t, err, "dropout")
}

func TestBPEIgnoreMergesAndPrefix(t *testing.T) {
	v := M{"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "##b": 5, "##c": 6, "a##b": 7}
	mk := func(model M) *Tokenizer {
		data, err := json.Marshal(M{"model": model})
		require.NoError(t, err)
		return mustFromJSON(t, data)
	}
	// ignore_merges: a word in the vocab is emitted whole even without a merge path.
	tk := mk(M{"type": "BPE", "vocab": v, "merges": []string{"a b"}, "ignore_merges": true})
	require.Equal(t, []int{4}, ids(t, tk, "abc", false))
	tk = mk(M{"type": "BPE", "vocab": v, "merges": []string{"a b"}, "ignore_merges": false})
	require.Equal(t, []int{3, 2}, ids(t, tk, "abc", false))
	// continuing_subword_prefix: non-initial chars are looked up as ##x and merges drop the prefix.
	tk = mk(M{"type": "BPE", "vocab": M{"a": 0, "##b": 1, "##c": 2, "ab": 3, "abc": 4}, "merges": [][]string{{"a", "##b"}, {"ab", "##c"}},
		"continuing_subword_prefix": "##", "unk_token": nil})
	require.Equal(t, []int{4}, ids(t, tk, "abc", false))
	require.Equal(t, []int{3}, ids(t, tk, "ab", false))
	// end_of_word_suffix.
	tk = mk(M{"type": "BPE", "vocab": M{"a": 0, "b</w>": 1, "ab</w>": 2}, "merges": []string{"a b</w>"}, "end_of_word_suffix": "</w>"})
	require.Equal(t, []int{2}, ids(t, tk, "ab", false))
}

// bertJSON is a BERT-like WordPiece tokenizer.
func bertJSON(t testing.TB, mod func(tok M)) []byte {
	vocab := M{"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "hello": 5, "world": 6, "##s": 7, "un": 8, "##aff": 9, "##able": 10, ",": 11, "!": 12}
	var added []M
	for _, s := range []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"} {
		added = append(added, M{"id": vocab[s], "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
	}
	tok := M{
		"added_tokens":   added,
		"normalizer":     M{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": nil, "lowercase": true},
		"pre_tokenizer":  M{"type": "BertPreTokenizer"},
		"post_processor": M{"type": "BertProcessing", "sep": []any{"[SEP]", 3}, "cls": []any{"[CLS]", 2}},
		"decoder":        M{"type": "WordPiece", "prefix": "##", "cleanup": true},
		"model":          M{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab},
	}
	if mod != nil {
		mod(tok)
	}
	data, err := json.Marshal(tok)
	require.NoError(t, err)
	return data
}

func TestWordPieceBert(t *testing.T) {
	tk := mustFromJSON(t, bertJSON(t, nil))
	text := "Hello, UNAFFABLE worlds!"
	require.Equal(t, []int{2, 5, 11, 8, 9, 10, 6, 7, 12, 3}, ids(t, tk, text, true))
	e, err := tk.Encode(text, true)
	require.NoError(t, err)
	require.Equal(t, [2]int{7, 9}, e.Offsets[3], "'un' of 'UNAFFABLE'")
	require.Equal(t, []int{-1, 0, 1, 2, 2, 2, 3, 3, 4, -1}, e.WordIDs)
	s, err := tk.Decode(e.IDs, true)
	require.NoError(t, err)
	require.Equal(t, "hello, unaffable worlds!", s)
	require.Equal(t, []int{1}, ids(t, tk, "xyz", false))
	// Pairs: [CLS] A [SEP] B [SEP] with type ids 0 then 1.
	p, err := tk.EncodePair("hello", "world", true)
	require.NoError(t, err)
	require.Equal(t, []int{2, 5, 3, 6, 3}, p.IDs)
	require.Equal(t, []int{0, 0, 0, 1, 1}, p.TypeIDs)
	require.Equal(t, []int{1, 0, 1, 0, 1}, p.SpecialTokensMask)
	require.Equal(t, []int{-1, 0, -1, 1, -1}, p.SequenceIDs)
	p, err = tk.EncodePair("hello", "world", false)
	require.NoError(t, err)
	require.Equal(t, []int{5, 6}, p.IDs)
	require.Equal(t, []int{0, 1}, p.TypeIDs)
	require.Equal(t, 2, tk.BOS())
	require.Equal(t, 3, tk.EOS())
	require.Equal(t, 0, tk.PAD())
	require.Equal(t, 1, tk.UNK())
	// Chinese characters are split by the normalizer; accents are stripped with lowercase.
	require.Equal(t, []int{5, 1, 1}, ids(t, tk, "HÉLLO 你好", false)[:1+2])
}

func TestTruncation(t *testing.T) {
	tk := mustFromJSON(t, bertJSON(t, nil), WithTruncation(&Truncation{MaxLength: 6}))
	text := "hello, unaffable worlds!" // words: hello , un##aff##able world##s ! (8 tokens)
	e, err := tk.Encode(text, true)
	require.NoError(t, err)
	require.Equal(t, []int{2, 5, 11, 8, 9, 3}, e.IDs)
	// Like HF 0.23, tokenization stops once the words so far hold max_length
	// (6) tokens: "!" is never tokenized, the overflow is the rest of "worlds".
	require.Len(t, e.Overflowing, 1)
	require.Equal(t, []int{2, 10, 6, 7, 3}, e.Overflowing[0].IDs)
	require.Equal(t, []int{1, 1, 1, 1, 1}, e.Overflowing[0].AttentionMask)
	// With a stride, the windows overlap.
	tk.SetTruncation(&Truncation{MaxLength: 6, Stride: 1})
	e, err = tk.Encode(text, true)
	require.NoError(t, err)
	require.Equal(t, []int{2, 5, 11, 8, 9, 3}, e.IDs)
	require.Len(t, e.Overflowing, 1)
	require.Equal(t, []int{2, 9, 10, 6, 7, 3}, e.Overflowing[0].IDs)
	// Budget 5 stops after "unaffable" (5 tokens); windows of 3, step 2.
	tk.SetTruncation(&Truncation{MaxLength: 5, Stride: 1})
	e, err = tk.Encode("hello, unaffable worlds! hello", true)
	require.NoError(t, err)
	require.Equal(t, []int{2, 5, 11, 8, 3}, e.IDs)
	require.Len(t, e.Overflowing, 1)
	require.Equal(t, []int{2, 8, 9, 10, 3}, e.Overflowing[0].IDs)
	// Left truncation keeps the end.
	tk.SetTruncation(&Truncation{MaxLength: 6, Direction: Left})
	e, err = tk.Encode(text, true)
	require.NoError(t, err)
	require.Equal(t, []int{2, 10, 6, 7, 12, 3}, e.IDs)
	// Without special tokens the whole budget is for text.
	e, err = tk.Encode(text, false)
	require.NoError(t, err)
	require.Equal(t, []int{8, 9, 10, 6, 7, 12}, e.IDs)
	// Pairs, longest first: budget 7-3 = 4 shared 2/2.
	tk.SetTruncation(&Truncation{MaxLength: 7})
	p, err := tk.EncodePair(text, "hello world", true)
	require.NoError(t, err)
	require.Equal(t, []int{2, 5, 11, 3, 5, 6, 3}, p.IDs)
	tk.SetTruncation(&Truncation{MaxLength: 7, Strategy: OnlyFirst})
	p, err = tk.EncodePair(text, "hello world", true)
	require.NoError(t, err)
	require.Equal(t, []int{2, 5, 11, 3, 5, 6, 3}, p.IDs)
	tk.SetTruncation(&Truncation{MaxLength: 7, Strategy: OnlySecond})
	_, err = tk.EncodePair(text, "hello world", true)
	require.Error(t, err, "the second input is too short to absorb the cut")
	tk.SetTruncation(&Truncation{MaxLength: 6, Stride: 4})
	_, err = tk.Encode(text, true)
	require.ErrorContains(t, err, "stride")
}

func TestPadding(t *testing.T) {
	tk := mustFromJSON(t, bertJSON(t, nil), WithPadding(&Padding{Strategy: PadFixed, Length: 6, PadToken: "[PAD]"}))
	e, err := tk.Encode("hello", true)
	require.NoError(t, err)
	require.Equal(t, []int{2, 5, 3, 0, 0, 0}, e.IDs)
	require.Equal(t, []int{1, 1, 1, 0, 0, 0}, e.AttentionMask)
	require.Equal(t, "[PAD]", e.Tokens[5])
	tk.SetPadding(&Padding{Direction: Left, PadID: 0, PadToken: "[PAD]"})
	batch, err := tk.EncodeBatch([]string{"hello", "hello world !", ""}, true)
	require.NoError(t, err)
	require.Equal(t, []int{0, 0, 2, 5, 3}, batch[0].IDs)
	require.Equal(t, []int{2, 5, 6, 12, 3}, batch[1].IDs)
	require.Equal(t, []int{0, 0, 0, 2, 3}, batch[2].IDs)
	require.Equal(t, []int{0, 0, 1, 1, 1}, batch[0].AttentionMask)
	tk.SetPadding(&Padding{PadToMultipleOf: 4, PadID: 0})
	e, err = tk.Encode("hello", true)
	require.NoError(t, err)
	require.Equal(t, []int{2, 5, 3, 0}, e.IDs)

	// The same settings read from tokenizer.json.
	tk = mustFromJSON(t, bertJSON(t, func(tok M) {
		tok["truncation"] = M{"direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 0}
		tok["padding"] = M{"strategy": M{"Fixed": 5}, "direction": "Right", "pad_to_multiple_of": nil, "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"}
	}))
	e, err = tk.Encode("hello, unaffable", true)
	require.NoError(t, err)
	require.Equal(t, []int{2, 5, 11, 3, 0}, e.IDs)
	require.Equal(t, &Truncation{MaxLength: 4}, tk.Truncation())
	require.Equal(t, PadFixed, tk.Padding().Strategy)
}

func TestRobertaPairAndOffsets(t *testing.T) {
	tk, err := Load(filepath.Join(fixtureRoot(), "roberta-tiny-tok"))
	require.NoError(t, err)
	a, err := tk.Encode("Hello world", false)
	require.NoError(t, err)
	b, err := tk.Encode("a", false)
	require.NoError(t, err)
	p, err := tk.EncodePair("Hello world", "a", true)
	require.NoError(t, err)
	want := append(append(append([]int{0}, a.IDs...), 2, 2), b.IDs...)
	want = append(want, 2)
	require.Equal(t, want, p.IDs)
	for _, ty := range p.TypeIDs {
		require.Equal(t, 0, ty)
	}
	// trim_offsets: "Ġworld" covers "world", not " world".
	for i, tok := range a.Tokens {
		text := "Hello world"[a.Offsets[i][0]:a.Offsets[i][1]]
		require.False(t, strings.HasPrefix(text, " "), "token %q offsets %v", tok, a.Offsets[i])
	}
	require.Equal(t, 0, tk.BOS())
	require.Equal(t, 2, tk.EOS())
	require.Equal(t, 1, tk.PAD())
}

func TestAddedTokenOptions(t *testing.T) {
	// The ids written in the file are not used: like HF, tokens missing from
	// the vocabulary (275 entries) get 275, 276, ...
	data := mistralJSON(t, func(tok M) {
		tok["added_tokens"] = append(append([]M{}, specials3...),
			M{"id": 9000, "content": "<mask>", "single_word": true, "lstrip": true, "rstrip": true, "normalized": false, "special": true},
			M{"id": 9001, "content": "ell", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": false},
			M{"id": 7, "content": "▁Hello", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false},
		)
	})
	tk := mustFromJSON(t, data)
	for tok, want := range map[string]int{"<mask>": 275, "ell": 276, "▁Hello": idHello, "<s>": 1} {
		id, ok := tk.TokenToID(tok)
		require.True(t, ok, tok)
		require.Equal(t, want, id, tok)
	}
	e, err := tk.Encode("Hello <mask> Hd<mask>", false)
	require.NoError(t, err)
	// "<mask>" between spaces is matched with both spaces (lstrip/rstrip);
	// "d<mask>" is inside a word: single_word rejects it. "ell" is a normal added token.
	require.Contains(t, e.IDs, 275)
	require.Equal(t, 1, strings.Count(fmt.Sprint(e.IDs), "275"))
	k := 0
	for i, id := range e.IDs {
		if id == 275 {
			k = i
		}
	}
	require.Equal(t, " <mask> ", e.Tokens[k])
	require.Contains(t, e.IDs, 276)
	s, err := tk.Decode([]int{idHello, 275, idWor}, true)
	require.NoError(t, err)
	require.Equal(t, "Hello wor", s)
	require.True(t, tk.IsSpecial(275))
	require.False(t, tk.IsSpecial(276))
	tok, ok := tk.IDToToken(idHello)
	require.True(t, ok)
	require.Equal(t, "▁Hello", tok)
	_, ok = tk.IDToToken(99999)
	require.False(t, ok)
	require.Equal(t, 277, tk.VocabSize())
	_, err = tk.Decode([]int{99999}, false)
	require.ErrorIs(t, err, ErrUnknownID)
}

func TestNormalizers(t *testing.T) {
	cases := []struct {
		json string
		in   string
		want string
	}{
		{`{"type":"NFC"}`, "e\u0301", "é"},
		{`{"type":"NFD"}`, "é", "e\u0301"},
		{`{"type":"NFKC"}`, "ﬁ①", "fi1"},
		{`{"type":"NFKD"}`, "ﬁé", "fie\u0301"},
		{`{"type":"Lowercase"}`, "HeLLo İ ΣΑ", "hello i\u0307 σα"},
		{`{"type":"Strip","strip_left":true,"strip_right":false}`, "  a b  ", "a b  "},
		{`{"type":"Strip","strip_left":true,"strip_right":true}`, "\t a b \u3000", "a b"},
		{`{"type":"StripAccents"}`, "e\u0301te\u0301", "ete"},
		{`{"type":"Replace","pattern":{"String":"''"},"content":"\""}`, "a ''b''", "a \"b\""},
		{`{"type":"Replace","pattern":{"Regex":"\\s+"},"content":" "}`, "a  \t b", "a b"},
		{`{"type":"Replace","pattern":{"Regex":"(l)(e)"},"content":"$1 $2"}`, "le travail", "l e travail"},
		{`{"type":"Prepend","prepend":"▁"}`, "", ""},
		{`{"type":"Append","append":"!"}`, "hi", "hi!"},
		{`{"type":"Sequence","normalizers":[{"type":"NFKD"},{"type":"StripAccents"},{"type":"Lowercase"}]}`, "Cụ Thể", "cu the"},
		{`{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true}`, "Héllo\x00\t你", "hello  你 "},
		{`{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":false,"strip_accents":false,"lowercase":false}`, "Héllo\u200b", "Héllo"},
	}
	for _, c := range cases {
		var err error
		n := parseNormalizer(json.RawMessage(c.json), "normalizer", &err)
		require.NoError(t, err, c.json)
		got := n.normalize(newNstr(c.in, 0))
		require.Equal(t, c.want, got.s, "%s on %q", c.json, c.in)
		for i := 0; i < len(got.s); i++ {
			sp := got.spanOf(i, i+1)
			require.True(t, 0 <= sp.start && sp.start <= sp.end && int(sp.end) <= len(c.in))
		}
	}
}

func TestDecoders(t *testing.T) {
	cases := []struct {
		json string
		in   []string
		want string
	}{
		{`{"type":"ByteFallback"}`, []string{"<0x61>", "b", "<0xE2>", "<0x82>", "<0xAC>", "c"}, "ab€c"},
		// A run of byte tokens that is not valid UTF-8 gives one U+FFFD per byte.
		{`{"type":"ByteFallback"}`, []string{"<0xE2>", "<0x82>", "<0xAC>", "<0xE2>", "c"}, "\uFFFD\uFFFD\uFFFD\uFFFDc"},
		{`{"type":"ByteLevel"}`, []string{"Hello", "Ġmy", "Ġfri", "end", ","}, "Hello my friend,"},
		// Invalid UTF-8 becomes U+FFFD per maximal invalid subsequence, as Rust's from_utf8_lossy.
		{`{"type":"ByteLevel"}`, []string{"âĤ", "a", "ÿ"}, "\uFFFDa\uFFFD"},
		{`{"type":"Strip","content":" ","start":1,"stop":1}`, []string{" a ", "  b  "}, "a b "},
		{`{"type":"WordPiece","prefix":"##","cleanup":true}`, []string{"hello", "##s", ",", "do", "not"}, "hellos, do not"},
		{`{"type":"BPEDecoder","suffix":"</w>"}`, []string{"hel", "lo</w>", "world</w>"}, "hello world"},
		{`{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}`, []string{"▁Hey", "▁friend!"}, "Hey friend!"},
		{`{"type":"Replace","pattern":{"String":"▁"},"content":" "}`, []string{"▁a", "b▁"}, " ab "},
	}
	for _, c := range cases {
		var err error
		d := parseDecoder(json.RawMessage(c.json), "decoder", &err)
		require.NoError(t, err, c.json)
		require.Equal(t, c.want, strings.Join(d.decodeChain(c.in), ""), c.json)
	}
}

func TestBadFiles(t *testing.T) {
	good := string(mistralJSON(t, nil))
	cases := []struct {
		name, json, want string
	}{
		{"syntax", "{\n\"model\": {\n  \"type\": \"BPE\",,\n}}", "line 3"},
		{"not object", `[1,2]`, "invalid tokenizer.json"},
		{"no model", `{"normalizer": null}`, `missing "model"`},
		{"unknown model", `{"model": {"type": "Lookup", "vocab": [["a", 0.0]]}}`, `unsupported model type "Lookup"`},
		{"unigram vocab", `{"model": {"type": "Unigram", "vocab": [["a", "x"]]}}`, `vocab[0] must be ["piece", score]`},
		{"unigram unk", `{"model": {"type": "Unigram", "unk_id": 3, "vocab": [["a", 0.0]]}}`, `unk_id 3 is outside the vocab`},
		{"unknown normalizer", `{"normalizer": {"type":"Sequence","normalizers":[{"type":"NFC"},{"type":"Precompiled","precompiled_charsmap":""}]}, "model": {"type":"BPE","vocab":{},"merges":[]}}`, `normalizer.normalizers[1]: unsupported normalizer type "Precompiled"`},
		{"unknown pretok", `{"pre_tokenizer": {"type":"Sequence","pretokenizers":[{"type":"UnicodeScripts"}]}, "model": {"type":"BPE","vocab":{},"merges":[]}}`, `pre_tokenizer.pretokenizers[0]: unsupported pre_tokenizer type "UnicodeScripts"`},
		{"unknown decoder", `{"decoder": {"type":"CTC"}, "model": {"type":"BPE","vocab":{},"merges":[]}}`, `decoder: unsupported decoder type "CTC"`},
		{"unknown post", `{"post_processor": {"type":"Foo"}, "model": {"type":"BPE","vocab":{},"merges":[]}}`, `post_processor: unsupported post_processor type "Foo"`},
		{"no type", `{"decoder": {"x":1}, "model": {"type":"BPE","vocab":{},"merges":[]}}`, `decoder has no "type"`},
		{"merge oov", `{"model": {"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}}`, `merges[0] ("a" "b"): merged token "ab" is not in the vocab`},
		{"merge shape", `{"model": {"type":"BPE","vocab":{"a":0},"merges":["ab"]}}`, `merges[0] "ab" is not of the form`},
		{"merge shape 2", `{"model": {"type":"BPE","vocab":{"a":0},"merges":[["a"]]}}`, `merges[0] must be`},
		{"vocab type", `{"model": {"type":"BPE","vocab":{"a":"x"},"merges":[]}}`, `tokenizer: model: key "vocab"`},
		{"lookahead", `{"pre_tokenizer": {"type":"Split","pattern":{"Regex":"a(?=b)"},"behavior":"Isolated","invert":false}, "model": {"type":"BPE","vocab":{},"merges":[]}}`, "pre_tokenizer.pattern"},
		{"behavior", `{"pre_tokenizer": {"type":"Split","pattern":{"String":"a"},"behavior":"Sideways"}, "model": {"type":"BPE","vocab":{},"merges":[]}}`, `unknown behavior "Sideways"`},
		{"template", `{"post_processor": {"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<x>","type_id":0}}],"special_tokens":{}}, "model": {"type":"BPE","vocab":{},"merges":[]}}`, `special token "<x>" is not in special_tokens`},
		{"added", `{"added_tokens": [{"content": "a"}], "model": {"type":"BPE","vocab":{},"merges":[]}}`, `added_tokens[0]: missing "id"`},
		{"padding", `{"padding": {"strategy": "Huge"}, "model": {"type":"BPE","vocab":{},"merges":[]}}`, `padding: unknown strategy "Huge"`},
		{"char", `{"pre_tokenizer": {"type":"Metaspace","replacement":"ab"}, "model": {"type":"BPE","vocab":{},"merges":[]}}`, `"replacement" must be a single character`},
	}
	for _, c := range cases {
		_, err := FromJSON([]byte(c.json))
		require.Error(t, err, c.name)
		require.ErrorContains(t, err, c.want, c.name)
		require.True(t, strings.HasPrefix(err.Error(), "tokenizer: "), "%s: %v", c.name, err)
	}
	_, err := Load(filepath.Join(t.TempDir(), "nope"))
	require.ErrorContains(t, err, "tokenizer: ")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model": 3}`), 0o644))
	_, err = Load(dir)
	require.ErrorContains(t, err, filepath.Join(dir, "tokenizer.json"))
	require.ErrorContains(t, err, "model")

	// Truncated and corrupted files never panic.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		b := []byte(good)
		switch i % 3 {
		case 0:
			b = b[:rng.IntN(len(b))]
		case 1:
			for k := 0; k < 3; k++ {
				b[rng.IntN(len(b))] = byte(rng.IntN(256))
			}
		case 2:
			b = []byte(strings.Replace(good, fmt.Sprint(rng.IntN(300)), `"x"`, 1))
		}
		require.NotPanics(t, func() {
			tk, err := FromJSON(b)
			if err == nil {
				_, _ = tk.Encode("Hello world <s> 🤗", true)
			}
		})
	}
}

func TestEncodeRandomTextNoPanic(t *testing.T) {
	tks := []*Tokenizer{mustFromJSON(t, mistralJSON(t, nil)), mustFromJSON(t, bertJSON(t, nil))}
	for _, d := range tokenizerDirs(t) {
		tk, err := Load(d)
		require.NoError(t, err)
		tks = append(tks, tk)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "B", " ", "  ", "\t", "\n", "'s", "é", "e\u0301", "日", "🤗", "<s>", "</s>", "\xff", "\xe2\x82", "9", ".", "\u00a0", "\u2028", "\x00"}
	for i := 0; i < 500; i++ {
		var sb strings.Builder
		for k := rng.IntN(20); k > 0; k-- {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		s := sb.String()
		for _, tk := range tks {
			e, err := tk.Encode(s, true)
			require.NoError(t, err, "%q", s)
			for _, off := range e.Offsets {
				require.True(t, 0 <= off[0] && off[0] <= off[1] && off[1] <= len(s), "%q offsets %v", s, off)
			}
			_, err = tk.Decode(e.IDs, false)
			require.NoError(t, err)
		}
	}
}

func TestFastMerges(t *testing.T) {
	good := []string{
		`[]`, ` [ ] `, `["a b","c d"]`, "[\n  [\"a\", \"b\"],\n  [\"\\u0120\", \"t\\\"q\"]\n]",
		`["\u00e9 x"]`, `[["a b", "c"]]`, `["a  b"]`,
	}
	for _, g := range good {
		got, ok := fastMerges([]byte(g))
		require.True(t, ok, g)
		var generic []json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(g), &generic))
		require.Len(t, got, len(generic), g)
		for i, r := range generic {
			var s string
			var pair []string
			if json.Unmarshal(r, &s) == nil {
				a, b, _ := cutSpace(s)
				require.Equal(t, [2]string{a, b}, got[i], g)
			} else {
				require.NoError(t, json.Unmarshal(r, &pair))
				require.Equal(t, [2]string{pair[0], pair[1]}, got[i], g)
			}
		}
	}
	for _, bad := range []string{``, `{}`, `["ab"]`, `[["a"]]`, `[["a","b","c"]]`, `["a b",]`, `["a b"] x`, `[1]`, `["a b"`, `[["a", 1]]`} {
		_, ok := fastMerges([]byte(bad))
		require.False(t, ok, bad)
	}
}
