package tokenizer

import (
	"encoding/json"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

// Unicode 16 characters the tests use.
const (
	emojiFaceBags = "\U0001FAE9" // 🫩 FACE WITH BAGS UNDER EYES, So, new in 16.0
	garayDigits5  = "\U00010D40\U00010D41\U00010D42\U00010D43\U00010D44"
	garayCapA     = '\U00010D50' // GARAY CAPITAL LETTER A, Lu, new in 16.0
	garaySmallA   = '\U00010D70' // its lowercase
	cjkExtI       = '\U0002EBF0' // CJK UNIFIED IDEOGRAPH-2EBF0, Lo, new in 15.1
)

func TestUCDTablesVersion(t *testing.T) {
	require.Equal(t, "16.0.0", ucdVersion)
	require.True(t, unicode.Is(ucdCategories["So"], 0x1FAE9))
	require.True(t, unicode.Is(ucdCategories["S"], 0x1FAE9))
	for r := rune(0x10D40); r <= 0x10D49; r++ {
		require.True(t, isNumber(r) && unicode.Is(ucdCatNd, r), "%U", r)
	}
	require.True(t, isLetter(garayCapA) && unicode.Is(ucdCatLu, garayCapA))
	require.True(t, isLetter(cjkExtI) && unicode.Is(ucdScripts["Han"], cjkExtI))
	require.False(t, isLetter(0x1FAE9) || isNumber(0x1FAE9))
	require.True(t, isWordChar(0x10D40) && isWordChar(garayCapA) && !isWordChar(0x1FAE9))
	require.Equal(t, garaySmallA, ucdToLower(garayCapA))
	require.Equal(t, garaySmallA, ucdToLower(garaySmallA))
}

// TestUCDTablesExtendGo checks the generated tables against Go's (Unicode
// 15.0): every code point keeps its category, except the ones Unicode 15.1
// and 16.0 assigned (which leave Cn) and U+1171E AHOM CONSONANT SIGN MEDIAL
// RA, which 16.0 moved from Mn to Mc. Lowercase mappings agree wherever Go has one.
func TestUCDTablesExtendGo(t *testing.T) {
	moved := map[rune]bool{0x1171E: true}
	for _, name := range []string{"L", "Lu", "Ll", "Lo", "M", "Mn", "Mc", "N", "Nd", "P", "S", "So", "Z"} {
		g, u := unicode.Categories[name], ucdCategories[name]
		require.NotNil(t, u, name)
		added := 0
		for r := rune(0); r <= unicode.MaxRune; r++ {
			in15, in16 := unicode.Is(g, r), unicode.Is(u, r)
			if in15 && !in16 {
				require.True(t, moved[r], "%U left %s", r, name)
			}
			if in16 && !in15 {
				require.True(t, unicode.Is(unicode.Cn, r) || moved[r], "%U was assigned in Go's tables but not %s", r, name)
				added++
			}
		}
		if name == "L" || name == "N" || name == "S" {
			require.Greater(t, added, 0, name)
		}
	}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if l := unicode.ToLower(r); l != r {
			require.Equal(t, l, ucdToLower(r), "%U", r)
		}
	}
}

func TestTranslateUnicodeProperties(t *testing.T) {
	cases := []struct {
		pattern, in string
		want        []string
	}{
		{`\p{S}+`, "a" + emojiFaceBags + emojiFaceBags + "b", []string{emojiFaceBags + emojiFaceBags}},
		{`\p{Symbol}+`, "a" + emojiFaceBags + "b", []string{emojiFaceBags}},
		{`\p{N}+`, "x" + garayDigits5 + "y", []string{garayDigits5}},
		{`\d+`, "x" + garayDigits5 + "y", []string{garayDigits5}},
		{`[\d]+`, "x" + garayDigits5 + "y", []string{garayDigits5}},
		{`\pN+`, "x" + garayDigits5 + "y", []string{garayDigits5}},
		{`\P{N}+`, "x" + garayDigits5 + "y", []string{"x", "y"}},
		{`\p{^N}+`, "x" + garayDigits5 + "y", []string{"x", "y"}},
		{`[^\p{N}]+`, "x" + garayDigits5 + "y", []string{"x", "y"}},
		{`[\P{N}]+`, "x" + garayDigits5 + "y", []string{"x", "y"}},
		{`\p{Lu}`, "a" + string(garayCapA) + string(garaySmallA), []string{string(garayCapA)}},
		{`\p{lowercase letter}`, "A" + string(garayCapA) + string(garaySmallA), []string{string(garaySmallA)}},
		{`\p{Han}+`, "a" + string(cjkExtI) + "中", []string{string(cjkExtI) + "中"}},
		{`\w+`, "é" + garayDigits5 + string(garayCapA) + " " + emojiFaceBags, []string{"é" + garayDigits5 + string(garayCapA)}},
		{`\p{Assigned}+`, "a\U0001FAFFb\U0010FFFD" + emojiFaceBags, []string{"a", "b\U0010FFFD" + emojiFaceBags}}, // U+10FFFD is private use: assigned
		{`\p{Cn}`, "a\U0001FAFF" + emojiFaceBags, []string{"\U0001FAFF"}},
		{`\p{Greek}+`, "abαβγ", []string{"αβγ"}},
	}
	for _, c := range cases {
		g, err := compileRegex(c.pattern)
		require.NoError(t, err, c.pattern)
		var got []string
		for _, m := range g.findAll(c.in) {
			got = append(got, c.in[m[0]:m[1]])
		}
		require.Equal(t, c.want, got, "pattern %s on %q", c.pattern, c.in)
	}
	// Names the tables lack are left to Go's regexp, which rejects unknown ones.
	_, err := compileRegex(`\p{NoSuchProperty}`)
	require.ErrorContains(t, err, "NoSuchProperty")
	g, err := compileRegex(`\p{Any}+`)
	require.NoError(t, err)
	require.Equal(t, [][2]int{{0, 5}}, g.findAll("a"+emojiFaceBags))
}

// deepSeekV3PreTokenizer is the pre_tokenizer of DeepSeek-V3's tokenizer.json.
var deepSeekV3PreTokenizer = M{"type": "Sequence", "pretokenizers": []M{
	{"type": "Split", "pattern": M{"Regex": `\p{N}{1,3}`}, "behavior": "Isolated", "invert": false},
	{"type": "Split", "pattern": M{"Regex": `[一-龥぀-ゟ゠-ヿ]+`}, "behavior": "Isolated", "invert": false},
	{"type": "Split", "pattern": M{"Regex": "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
		"behavior": "Isolated", "invert": false},
	{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
}}

// byteBPE returns a byte-level BPE tokenizer (all 256 byte characters plus
// the given merges) behind pre.
func byteBPE(t *testing.T, pre M, merges ...string) *Tokenizer {
	vocab := M{}
	for b := 0; b < 256; b++ {
		vocab[byteToStr[b]] = b
	}
	for i, m := range merges {
		var a, c string
		for k, r := range m {
			if r == ' ' {
				a, c = m[:k], m[k+1:]
				break
			}
		}
		vocab[a+c] = 256 + i
	}
	data, err := json.Marshal(M{"pre_tokenizer": pre, "decoder": M{"type": "ByteLevel"},
		"model": M{"type": "BPE", "vocab": vocab, "merges": merges}})
	require.NoError(t, err)
	tok, err := FromJSON(data)
	require.NoError(t, err)
	return tok
}

func preTokens(tok *Tokenizer, text string) []string {
	return strs(tok.pre.preTokenize(nil, []nstr{newNstr(text, 0)}))
}

// TestDeepSeekV3Unicode16Emoji: with DeepSeek-V3's pre-tokenizer, Hugging
// Face tokenizers 0.23 (Oniguruma with Unicode 16) reads 🫩 as \p{S}, so
// ` ?[\p{P}\p{S}]+` takes it with its leading space: "so", " tired", " 🫩",
// " today". (With Unicode 15 tables 🫩 is unassigned: the space falls to
// `\s+` and 🫩 alone is left between matches: "so", " tired", " ", "🫩", " today".)
func TestDeepSeekV3Unicode16Emoji(t *testing.T) {
	tok := byteBPE(t, deepSeekV3PreTokenizer, "Ġ ð")
	text := "so tired " + emojiFaceBags + " today"
	require.Equal(t, []string{"so", "Ġtired", "ĠðŁ«©", "Ġtoday"}, preTokens(tok, text))
	enc, err := tok.Encode(text, false)
	require.NoError(t, err)
	// The merge "Ġ ð" applies because the space and the emoji share a word.
	require.Equal(t, []string{"s", "o", "Ġ", "t", "i", "r", "e", "d", "Ġð", "Ł", "«", "©", "Ġ", "t", "o", "d", "a", "y"}, enc.Tokens)
	// Each byte-level piece of the emoji points at the whole character.
	require.Equal(t, [][2]int{{8, 13}, {9, 13}, {9, 13}, {9, 13}}, offsetsOf(enc)[8:12])
	dec, err := tok.Decode(enc.IDs, false)
	require.NoError(t, err)
	require.Equal(t, text, dec)
}

// TestLlama3Unicode16Digits: Llama-3's pattern takes \p{N}{1,3}; Garay
// digits are Nd in Unicode 16, so "abc " + five of them splits as "abc",
// " ", three digits, two digits (the space alone: ` ?[^\s\p{L}\p{N}]+`
// cannot take digits, and `\s+(?!\S)` cannot end before a non-space). With
// Unicode 15 they were unassigned and ` ?[^\s\p{L}\p{N}]+` took " " and all five.
func TestLlama3Unicode16Digits(t *testing.T) {
	text := "abc " + garayDigits5
	want := []string{"abc", " ", garayDigits5[:12], garayDigits5[12:]}
	g, err := compileRegex(llama3Pattern)
	require.NoError(t, err)
	require.Equal(t, want, piecesOf(text, g.findAll(text)), "hand-written scanner")
	g.src = ""
	require.Equal(t, want, piecesOf(text, g.findAll(text)), "translated regexp")
	// Qwen2's \p{N} takes them one at a time.
	q, err := compileRegex(qwen2Pattern)
	require.NoError(t, err)
	require.Len(t, piecesOf(text, q.findAll(text)), 2+5)
	// And through a Llama-3-style tokenizer.json.
	tok := byteBPE(t, M{"type": "Sequence", "pretokenizers": []M{
		{"type": "Split", "pattern": M{"Regex": llama3Pattern}, "behavior": "Isolated", "invert": false},
		{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
	}})
	pieces := preTokens(tok, text)
	require.Len(t, pieces, 4)
	require.Equal(t, []string{"abc", "Ġ"}, pieces[:2])
}

func TestUnicode16Lowercase(t *testing.T) {
	n := lowercaseNormalizer{}.normalize(newNstr("ÀB"+string(garayCapA)+"İ", 0))
	require.Equal(t, "àb"+string(garaySmallA)+"i\u0307", n.s)
}

func offsetsOf(e *Encoding) [][2]int {
	out := make([][2]int, len(e.Offsets))
	for i, o := range e.Offsets {
		out[i] = [2]int{o[0], o[1]}
	}
	return out
}
