package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// fixtureRoot is testdata/hf, or $BLOCKLLM_FIXTURES.
func fixtureRoot() string {
	if r := os.Getenv("BLOCKLLM_FIXTURES"); r != "" {
		return r
	}
	return filepath.Join("..", "..", "testdata", "hf")
}

type goldenRow struct {
	Text         string `json:"text"`
	IDs          []int  `json:"ids"`
	IDsNoSpecial []int  `json:"ids_no_special"`
	Decoded      string `json:"decoded"`
}

func readRows(t testing.TB, path string) []goldenRow {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var rows []goldenRow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var r goldenRow
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "%s line %d", path, line)
		rows = append(rows, r)
	}
	require.NoError(t, sc.Err())
	return rows
}

// tokenizerDirs lists the fixture sub-directories holding tokenizer.json and
// encodings.jsonl.
func tokenizerDirs(t testing.TB) []string {
	root := fixtureRoot()
	ents, err := os.ReadDir(root)
	require.NoError(t, err, "fixture root %s", root)
	var dirs []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		d := filepath.Join(root, e.Name())
		if fileExists(filepath.Join(d, "tokenizer.json")) && fileExists(filepath.Join(d, "encodings.jsonl")) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func TestGoldenTokenizers(t *testing.T) {
	dirs := tokenizerDirs(t)
	require.NotEmpty(t, dirs, "no tokenizer fixtures under %s", fixtureRoot())
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			tk, err := Load(dir)
			require.NoError(t, err)
			rows := readRows(t, filepath.Join(dir, "encodings.jsonl"))
			require.NotEmpty(t, rows)
			for i, r := range rows {
				enc, err := tk.Encode(r.Text, true)
				require.NoError(t, err, "row %d %q", i, r.Text)
				require.Equal(t, r.IDs, nonNil(enc.IDs), "row %d ids for %q (tokens %q)", i, r.Text, enc.Tokens)
				require.Equal(t, len(enc.IDs), len(enc.Offsets))
				for k, off := range enc.Offsets {
					require.True(t, 0 <= off[0] && off[0] <= off[1] && off[1] <= len(r.Text), "row %d token %d offsets %v", i, k, off)
				}
				plain, err := tk.Encode(r.Text, false)
				require.NoError(t, err)
				require.Equal(t, r.IDsNoSpecial, nonNil(plain.IDs), "row %d ids_no_special for %q (tokens %q)", i, r.Text, plain.Tokens)
				dec, err := tk.Decode(r.IDs, true)
				require.NoError(t, err)
				require.Equal(t, r.Decoded, dec, "row %d decoded", i)
			}
			// The batch path gives the same ids.
			texts := make([]string, len(rows))
			for i, r := range rows {
				texts[i] = r.Text
			}
			encs, err := tk.EncodeBatch(texts, true)
			require.NoError(t, err)
			for i, r := range rows {
				require.Equal(t, r.IDs, nonNil(encs[i].IDs), "batch row %d", i)
			}
		})
	}
}

func nonNil(x []int) []int {
	if x == nil {
		return []int{}
	}
	return x
}
