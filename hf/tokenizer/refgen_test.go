package tokenizer

import (
	"compress/gzip"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Regenerating the reference files (testdata/reference/*.json.gz and
// testdata/truncation.json.gz) with a new Hugging Face tokenizers release:
// see testdata/refgen/README.md. The tests below are tools: they run only
// when $TOKENIZER_REFGEN names a work directory.

func refgenDir(t *testing.T) string {
	dir := os.Getenv("TOKENIZER_REFGEN")
	if dir == "" {
		t.Skip("set TOKENIZER_REFGEN to regenerate reference files")
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "variants"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "ref"), 0o755))
	return dir
}

func refgenTexts(t testing.TB) ([]string, [][2]string) {
	var texts []string
	for _, d := range tokenizerDirs(t) {
		for _, r := range readRows(t, filepath.Join(d, "encodings.jsonl")) {
			texts = append(texts, r.Text)
		}
	}
	rng := rand.New(rand.NewPCG(7, 8))
	if data, err := os.ReadFile("/usr/share/games/fortunes/fortunes"); err == nil {
		docs := strings.Split(string(data), "\n%\n")
		for i := 0; i < 800 && i < len(docs); i++ {
			texts = append(texts, docs[rng.IntN(len(docs))])
		}
	}
	alphabet := []string{"a", "b", "Z", "hello", " world", " ", "  ", "\t", "\n", "\r\n", "'s", "'LL", "'", "é", "e\u0301", "İ", "ß", "ﬁ", "①",
		"日本", "🤗", "👍🏽", "<s>", "</s>", "<mask>", "<|eot|>", "<unk>", "[CLS]", "hello world", "foo", "9", "12345", ".", ",", "!?", "(x)",
		"\u00a0", "\u2028", "\u3000", "\u200b", "\x00", "\x07", "▁", "Ġ", "x**2", "don't", "Ünïcödé", "#", "@", "\\", "\"", "ÅÄÖ", "ẞ"}
	for i := 0; i < 1500; i++ {
		var sb strings.Builder
		for k := rng.IntN(14); k >= 0; k-- {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		texts = append(texts, sb.String())
	}
	var pairs [][2]string
	for i := 0; i < 100; i++ {
		pairs = append(pairs, [2]string{texts[rng.IntN(len(texts))], texts[rng.IntN(len(texts))]})
	}
	return texts, pairs
}

func TestRefgenInputs(t *testing.T) {
	dir := refgenDir(t)
	texts, pairs := refgenTexts(t)
	for name, m := range referenceVariants(t) {
		js, err := json.Marshal(m)
		require.NoError(t, err)
		in, err := json.Marshal(M{"tokenizer_json": string(js), "texts": texts, "pairs": pairs})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(filepath.Join(dir, "variants"), name+".json"), in, 0o644))
	}
}

type devRef struct {
	Rows []struct {
		Text         string   `json:"text"`
		IDs          []int    `json:"ids"`
		IDsNoSpecial []int    `json:"ids_no_special"`
		Decoded      string   `json:"decoded"`
		Tokens       []string `json:"tokens"`
	} `json:"rows"`
	Pairs []struct {
		A, B    string
		IDs     []int `json:"ids"`
		TypeIDs []int `json:"type_ids"`
	} `json:"pairs"`
}

func TestRefgenTruncationInputs(t *testing.T) {
	dir := refgenDir(t)
	texts, pairs := truncTexts()
	in, _ := json.Marshal(M{"configs": truncConfigs(t), "texts": texts, "pairs": pairs})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "trunc_in.json"), in, 0o644))
}

func TestRefgenOutputs(t *testing.T) {
	dir := refgenDir(t)
	require.NoError(t, os.MkdirAll("testdata/reference", 0o755))
	for name := range referenceVariants(t) {
		var ref map[string][]json.RawMessage
		data, err := os.ReadFile(filepath.Join(dir, "ref", name+".json"))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, &ref))
		var rows []any
		for i, r := range ref["rows"] {
			if i < 40 || i%7 == 0 {
				var x M
				require.NoError(t, json.Unmarshal(r, &x))
				if x["words"] != nil {
					ws := x["words"].([]any)
					for k := range ws {
						if ws[k] == nil {
							ws[k] = -1
						}
					}
				}
				rows = append(rows, x)
			}
		}
		pairs := ref["pairs"][:20]
		f, err := os.Create(filepath.Join("testdata/reference", name+".json.gz"))
		require.NoError(t, err)
		zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
		require.NoError(t, json.NewEncoder(zw).Encode(M{"rows": rows, "pairs": pairs}))
		require.NoError(t, zw.Close())
		require.NoError(t, f.Close())
	}
	out, err := os.ReadFile(filepath.Join(dir, "trunc_out.json"))
	require.NoError(t, err)
	f, err := os.Create(filepath.Join("testdata", "truncation.json.gz"))
	require.NoError(t, err)
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	_, err = zw.Write(out)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
