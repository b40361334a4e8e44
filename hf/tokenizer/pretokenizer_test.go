package tokenizer

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// regexSplitCases: input, expected pieces under the GPT-2 pattern, expected
// pieces under the Llama-3 (cl100k) pattern. The expectations were produced
// with Python's `regex` module (a backtracking engine with look-ahead, like
// Oniguruma) and checked by hand for the whitespace cases: a run of
// whitespace followed by a non-space gives all but its last char as one
// piece; the last char joins the next piece only when it is a plain space
// (GPT-2's optional " ") — otherwise it stands alone.
var regexSplitCases = []struct {
	in          string
	gpt2, llama []string
}{
	{"", []string{}, []string{}},
	{" ", []string{" "}, []string{" "}},
	{"  ", []string{"  "}, []string{"  "}},
	{"   ", []string{"   "}, []string{"   "}},
	{"a", []string{"a"}, []string{"a"}},
	{" a", []string{" a"}, []string{" a"}},
	{"  a", []string{" ", " a"}, []string{" ", " a"}},
	{"   a", []string{"  ", " a"}, []string{"  ", " a"}},
	{"a ", []string{"a", " "}, []string{"a", " "}},
	{"a  ", []string{"a", "  "}, []string{"a", "  "}},
	{"hello world", []string{"hello", " world"}, []string{"hello", " world"}},
	{"Hello  world", []string{"Hello", " ", " world"}, []string{"Hello", " ", " world"}},
	{"Hello   world", []string{"Hello", "  ", " world"}, []string{"Hello", "  ", " world"}},
	{"a\tb", []string{"a", "\t", "b"}, []string{"a", "\tb"}},
	{"a \tb", []string{"a", " ", "\t", "b"}, []string{"a", " ", "\tb"}},
	{"a\t b", []string{"a", "\t", " b"}, []string{"a", "\t", " b"}},
	{"a\t\tb", []string{"a", "\t", "\t", "b"}, []string{"a", "\t", "\tb"}},
	{"a\n\nb", []string{"a", "\n", "\n", "b"}, []string{"a", "\n\n", "b"}},
	{"a \n b", []string{"a", " \n", " b"}, []string{"a", " \n", " b"}},
	{"x  \n", []string{"x", "  \n"}, []string{"x", "  \n"}},
	{"It's", []string{"It", "'s"}, []string{"It", "'s"}},
	{"it'S", []string{"it", "'", "S"}, []string{"it", "'S"}},
	{"'s", []string{"'s"}, []string{"'s"}},
	{"''s", []string{"''", "s"}, []string{"''", "s"}},
	{" 's", []string{" '", "s"}, []string{" '", "s"}},
	{"  's", []string{" ", " '", "s"}, []string{" ", " '", "s"}},
	{"don't stop", []string{"don", "'t", " stop"}, []string{"don", "'t", " stop"}},
	{"we'll 're 've 'm 'd 't", []string{"we", "'ll", " '", "re", " '", "ve", " '", "m", " '", "d", " '", "t"}, []string{"we", "'ll", " '", "re", " '", "ve", " '", "m", " '", "d", " '", "t"}},
	{"(maybe)!", []string{"(", "maybe", ")!"}, []string{"(maybe", ")!"}},
	{" (maybe)", []string{" (", "maybe", ")"}, []string{" (", "maybe", ")"}},
	{"3.14159", []string{"3", ".", "14159"}, []string{"3", ".", "141", "59"}},
	{" 12345 x", []string{" 12345", " x"}, []string{" ", "123", "45", " x"}},
	{"a1b2", []string{"a", "1", "b", "2"}, []string{"a", "1", "b", "2"}},
	{"x**2  # c", []string{"x", "**", "2", " ", " #", " c"}, []string{"x", "**", "2", " ", " #", " c"}},
	{"\U0001f600\U0001f600 a", []string{"\U0001f600\U0001f600", " a"}, []string{"\U0001f600\U0001f600", " a"}},
	{" \U0001f600", []string{" \U0001f600"}, []string{" \U0001f600"}},
	{"e\u0301t", []string{"e", "\u0301", "t"}, []string{"e", "\u0301t"}},
	{"na\u00efve caf\u00e9", []string{"na\u00efve", " caf\u00e9"}, []string{"na\u00efve", " caf\u00e9"}},
	{"\u65e5\u672c\u8a9e \u30c6\u30ad\u30b9\u30c8", []string{"\u65e5\u672c\u8a9e", " \u30c6\u30ad\u30b9\u30c8"}, []string{"\u65e5\u672c\u8a9e", " \u30c6\u30ad\u30b9\u30c8"}},
	{"\u00a0a", []string{"\u00a0", "a"}, []string{"\u00a0a"}},
	{"a\u00a0b", []string{"a", "\u00a0", "b"}, []string{"a", "\u00a0b"}},
	{"a \u00a0b", []string{"a", " ", "\u00a0", "b"}, []string{"a", " ", "\u00a0b"}},
	{"a\u3000\u3000b", []string{"a", "\u3000", "\u3000", "b"}, []string{"a", "\u3000", "\u3000b"}},
	{"a\u2028b", []string{"a", "\u2028", "b"}, []string{"a", "\u2028b"}},
	{"tabs\tand\nnewlines\n\nhere", []string{"tabs", "\t", "and", "\n", "newlines", "\n", "\n", "here"}, []string{"tabs", "\tand", "\n", "newlines", "\n\n", "here"}},
	{"  leading and  double  spaces ", []string{" ", " leading", " and", " ", " double", " ", " spaces", " "}, []string{" ", " leading", " and", " ", " double", " ", " spaces", " "}},
	{"def f(x):\n    return x", []string{"def", " f", "(", "x", "):", "\n   ", " return", " x"}, []string{"def", " f", "(x", "):\n", "   ", " return", " x"}},
	{"\u216b\u06639", []string{"\u216b\u06639"}, []string{"\u216b\u06639"}},
	{"a-b--c", []string{"a", "-", "b", "--", "c"}, []string{"a", "-b", "--", "c"}},
	{" .a", []string{" .", "a"}, []string{" .", "a"}},
	{"... ", []string{"...", " "}, []string{"...", " "}},
	{"HELLO'LL", []string{"HELLO", "'", "LL"}, []string{"HELLO", "'LL"}},
	{"foo'lll", []string{"foo", "'ll", "l"}, []string{"foo", "'ll", "l"}},
}

const llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

func piecesOf(s string, ms [][2]int) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, s[m[0]:m[1]])
	}
	return out
}

func TestGPT2Split(t *testing.T) {
	for _, c := range regexSplitCases {
		require.Equal(t, c.gpt2, piecesOf(c.in, gpt2Split(nil, c.in)), "input %q", c.in)
	}
}

func TestRegexEmulationGPT2(t *testing.T) {
	g, err := compileRegex(gpt2Pattern)
	require.NoError(t, err)
	g.src = "" // force the translated-regexp path instead of the hand-written scanner
	for _, c := range regexSplitCases {
		require.Equal(t, c.gpt2, piecesOf(c.in, g.findAll(c.in)), "input %q", c.in)
	}
}

func TestRegexEmulationLlama3(t *testing.T) {
	require.Equal(t, cl100kPattern, llama3Pattern)
	g, err := compileRegex(llama3Pattern)
	require.NoError(t, err)
	require.GreaterOrEqual(t, g.wsIx, 0)
	g.src = "" // force the translated-regexp path instead of the hand-written scanner
	for _, c := range regexSplitCases {
		require.Equal(t, c.llama, piecesOf(c.in, g.findAll(c.in)), "input %q", c.in)
	}
}

func TestCl100kScanner(t *testing.T) {
	g, err := compileRegex(cl100kPattern)
	require.NoError(t, err)
	for _, c := range regexSplitCases {
		require.Equal(t, c.llama, piecesOf(c.in, g.findAll(c.in)), "input %q", c.in)
	}
	// Qwen2's pattern differs only in taking digits one at a time; both
	// scanners agree with the regexp path.
	q, err := compileRegex(qwen2Pattern)
	require.NoError(t, err)
	qre, err := compileRegex(qwen2Pattern)
	require.NoError(t, err)
	qre.src = ""
	for _, in := range []string{" 12345 x", "3.14159", "٣٣٣٣a", "x'ſ 'RE\r\n\r\n  y", "a \r\n\tb"} {
		require.Equal(t, piecesOf(in, qre.findAll(in)), piecesOf(in, q.findAll(in)), "input %q", in)
	}
	require.Equal(t, []string{" ", "1", "2", "3", "4", "5", " x"}, piecesOf(" 12345 x", q.findAll(" 12345 x")))
	// (?i) contractions, including ſ which case-folds to s.
	require.Equal(t, []string{"it", "'S", " '", "ſ"}, piecesOf("it'S 'ſ", g.findAll("it'S 'ſ"))[:4])
	require.Equal(t, []string{"x", "'ſ"}, piecesOf("x'ſ", g.findAll("x'ſ")))
}

func TestRegexUnsupported(t *testing.T) {
	_, err := compileRegex(`a(?=b)`)
	require.ErrorContains(t, err, "look-around")
	_, err = compileRegex(`(?<!x)y`)
	require.ErrorContains(t, err, "look-around")
	g, err := compileRegex(`\s+`)
	require.NoError(t, err)
	// \s is Unicode-aware, as in Oniguruma.
	require.Equal(t, [][2]int{{1, 3}}, g.findAll("a\u00a0b"))
	g, err = compileRegex(`[\w]+`)
	require.NoError(t, err)
	require.Equal(t, [][2]int{{0, 5}}, g.findAll("été!"))
}

func strs(ps []nstr) []string {
	out := []string{}
	for _, p := range materialize(ps) {
		out = append(out, p.s)
	}
	return out
}

func TestSplitBehaviors(t *testing.T) {
	in := "the-final--countdown"
	want := map[Behavior][]string{
		Removed:            {"the", "final", "countdown"},
		Isolated:           {"the", "-", "final", "-", "-", "countdown"},
		MergedWithPrevious: {"the-", "final-", "-", "countdown"},
		MergedWithNext:     {"the", "-final", "-", "-countdown"},
		Contiguous:         {"the", "-", "final", "--", "countdown"},
	}
	for b, w := range want {
		sp := splitPre{literal: "-", behavior: b}
		require.Equal(t, w, strs(sp.preTokenize(nil, []nstr{newNstr(in, 0)})), "behavior %d", b)
	}
	// invert: the matches become the pieces kept.
	sp := splitPre{literal: "-", behavior: Removed, invert: true}
	require.Equal(t, []string{"-", "-", "-"}, strs(sp.preTokenize(nil, []nstr{newNstr(in, 0)})))
	// Offsets follow the pieces.
	ps := (splitPre{literal: "-", behavior: Removed}).preTokenize(nil, []nstr{newNstr(in, 0)})
	require.Equal(t, span{4, 9}, ps[1].spanOf(0, len(ps[1].s)))
}

func TestPreTokenizersSimple(t *testing.T) {
	in := []nstr{newNstr("Hey, you 12-34 café!", 0)}
	require.Equal(t, []string{"Hey", ",", "you", "12", "-", "34", "café", "!"}, strs(whitespacePre{}.preTokenize(nil, in)))
	require.Equal(t, []string{"Hey,", "you", "12-34", "café!"}, strs(runePre{pred: isSpace, behavior: Removed}.preTokenize(nil, in)))
	bert := seqPre{runePre{pred: isSpace, behavior: Removed}, runePre{pred: isPunctuation, behavior: Isolated}}
	require.Equal(t, []string{"Hey", ",", "you", "12", "-", "34", "café", "!"}, strs(bert.preTokenize(nil, in)))
	digits := runePre{pred: isNumber, behavior: Isolated}
	require.Equal(t, []string{"Hey, you ", "1", "2", "-", "3", "4", " café!"}, strs(digits.preTokenize(nil, in)))
	digits.behavior = Contiguous
	require.Equal(t, []string{"Hey, you ", "12", "-", "34", " café!"}, strs(digits.preTokenize(nil, in)))
}

func TestByteLevelPre(t *testing.T) {
	bl := byteLevelPre{addPrefixSpace: false, useRegex: true}
	got := strs(bl.preTokenize(nil, []nstr{newNstr("Hello my friend, how is your day going?", 0)}))
	require.Equal(t, []string{"Hello", "Ġmy", "Ġfriend", ",", "Ġhow", "Ġis", "Ġyour", "Ġday", "Ġgoing", "?"}, got)
	got = strs(bl.preTokenize(nil, []nstr{newNstr("Hello there       dear", 0)}))
	require.Equal(t, []string{"Hello", "Ġthere", "ĠĠĠĠĠĠ", "Ġdear"}, got)
	bl.addPrefixSpace = true
	ps := bl.preTokenize(nil, []nstr{newNstr("i⭢j", 0)})
	require.Equal(t, span{1, 4}, ps[1].spanOf(0, len(ps[1].s)))
	require.Equal(t, []string{"Ġi", "âŃ¢", "j"}, strs(ps))
	// The 3-byte char maps to 3 byte-level chars that all point at it.
	require.Equal(t, span{1, 4}, ps[1].spanOf(0, len(ps[1].s)))
	bl.useRegex = false
	require.Equal(t, []string{"ĠHelloĠmy"}, strs(bl.preTokenize(nil, []nstr{newNstr("Hello my", 0)})))
}

func TestMetaspacePre(t *testing.T) {
	m := metaspacePre{replacement: "▁", scheme: PrependAlways, split: true}
	require.Equal(t, []string{"▁Hey", "▁friend!"}, strs(m.preTokenize(nil, []nstr{newNstr("Hey friend!", 0)})))
	require.Equal(t, []string{"▁Hey", "▁", "▁", "▁friend!"}, strs(m.preTokenize(nil, []nstr{newNstr("Hey   friend!", 0)})))
	// prepend_scheme first: only the piece at the start of the input.
	m = metaspacePre{replacement: "▁", scheme: PrependFirst, split: false}
	root := newNstr(" Hey <s>how <s>are <s> you", 0)
	pieces := []nstr{root.slice(0, 5), root.slice(8, 12), root.slice(15, 19), root.slice(22, 26)}
	require.Equal(t, []string{"▁Hey▁", "how▁", "are▁", "▁you"}, strs(m.preTokenize(nil, pieces)))
	pieces = []nstr{root.slice(1, 5), root.slice(8, 12)}
	require.Equal(t, []string{"Hey▁", "how▁"}, strs(m.preTokenize(nil, pieces)), "a piece not at offset 0 gets no prefix")
	m = metaspacePre{replacement: "▁", scheme: PrependNever, split: true}
	require.Equal(t, []string{"Hey", "▁you"}, strs(m.preTokenize(nil, []nstr{newNstr("Hey you", 0)})))
}
