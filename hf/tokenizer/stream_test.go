package tokenizer

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fortunesText joins the first n bytes' worth of the embedded fortunes (spaces and
// newlines inside, no blank line): one long document.
func fortunesText(t testing.TB, n int) string {
	f, err := os.Open(filepath.Join("..", "..", "data", "fortunes", "c4-train.00000-of-00001.json.gz"))
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	var b strings.Builder
	for sc.Scan() && b.Len() < n {
		var d struct{ Text string }
		require.NoError(t, json.Unmarshal(sc.Bytes(), &d))
		b.WriteString(strings.ReplaceAll(d.Text, "\n\n", "\n"))
		b.WriteString(" ")
	}
	return b.String()
}

// TestEncodeStreamMatchesWhole: streaming in small pieces gives the ids of encoding the
// whole text at once, for every reference tokenizer family (Llama-2's Prepend/Replace,
// Metaspace first/always/never, ByteLevel with and without a prefix space, Llama-3's
// pattern, BERT), and stops when fn returns false.
func TestEncodeStreamMatchesWhole(t *testing.T) {
	text := fortunesText(t, 200_000)
	text += " 日本語の テキスト  two  spaces\tand\ttabs 🤗🤗 end"
	names := make([]string, 0)
	variants := referenceVariants(t)
	for n := range variants {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			js, err := json.Marshal(variants[name])
			require.NoError(t, err)
			tk, err := FromJSON(js)
			require.NoError(t, err)
			whole, err := tk.EncodeIDs(text, false)
			require.NoError(t, err)
			var got []int
			pieces := 0
			require.NoError(t, tk.EncodeStream(text, 3000, func(ids []int) bool {
				got = append(got, ids...)
				pieces++
				return true
			}))
			assert.Greater(t, pieces, 50)
			require.Equal(t, len(whole), len(got))
			assert.Equal(t, whole, got)
		})
	}
	tk, err := Load(filepath.Join("..", "..", "testdata", "hf", "llama-tiny-tok", "tokenizer.json"))
	require.NoError(t, err)
	calls := 0
	require.NoError(t, tk.EncodeStream(text, 3000, func([]int) bool { calls++; return calls < 3 }))
	assert.Equal(t, 3, calls, "stops when fn returns false")
}

func TestCutPoint(t *testing.T) {
	s := "aaaa bbbb  cccc dddd"
	assert.Equal(t, 4, cutPoint(s, 0, 6), "before the space that separates two words")
	assert.Equal(t, len(s), cutPoint(s, 0, 100))
	assert.Equal(t, 15, cutPoint(s, 5, 10), "not inside a run of spaces")
	long := strings.Repeat("x", 15) + " y"
	assert.Equal(t, 15, cutPoint(long, 0, 10), "the next cut when a word is longer than a piece")
	long = strings.Repeat("x", 100) + " y"
	assert.Equal(t, 10, cutPoint(long, 0, 10), "a rune boundary inside a word longer than two pieces")
	nospace := strings.Repeat("é", 100)
	p := cutPoint(nospace, 0, 11)
	assert.True(t, p > 0 && p < len(nospace) && p%2 == 0, "a rune boundary: %d", p)
}

// TestEncodeStreamMemory encodes a 30 MB single-document text (no blank line) in a
// child process, keeping every id, and checks the child's peak resident memory stays
// below 300 MB.
func TestEncodeStreamMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("30 MB of tokenization")
	}
	if os.Getenv("BLOCKLLM_STREAM_CHILD") != "" {
		t.Skip("child")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEncodeStreamMemoryChild$", "-test.v")
	cmd.Env = append(os.Environ(), "BLOCKLLM_STREAM_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var maxRSS, ids, size int64
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(strings.TrimSpace(l)); len(f) == 4 && f[0] == "stream:" {
			size, _ = strconv.ParseInt(f[1], 10, 64)
			ids, _ = strconv.ParseInt(f[2], 10, 64)
			maxRSS, _ = strconv.ParseInt(f[3], 10, 64)
		}
	}
	require.Positive(t, maxRSS, "%s", out)
	t.Logf("%d bytes of text -> %d ids, peak RSS %.1f MB", size, ids, float64(maxRSS)/1e6)
	assert.GreaterOrEqual(t, size, int64(30<<20))
	assert.Greater(t, ids, size/8)
	assert.Less(t, maxRSS, int64(300e6))
}

func TestEncodeStreamMemoryChild(t *testing.T) {
	if os.Getenv("BLOCKLLM_STREAM_CHILD") == "" {
		t.Skip("run by TestEncodeStreamMemory")
	}
	tk, err := Load(filepath.Join("..", "..", "testdata", "hf", "llama-tiny-tok", "tokenizer.json"))
	require.NoError(t, err)
	words := strings.Fields(fortunesText(t, 200_000))
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.Grow(30<<20 + 64)
	for b.Len() < 30<<20 {
		b.WriteString(words[r.IntN(len(words))])
		if r.IntN(12) == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	text := b.String()
	words = nil
	// every id is kept, in chunks as a streaming consumer (a block packer) holds them
	var chunks [][]int32
	n := 0
	require.NoError(t, tk.EncodeStream(text, 0, func(ids []int) bool {
		c := make([]int32, len(ids))
		for i, id := range ids {
			c[i] = int32(id)
		}
		chunks = append(chunks, c)
		n += len(c)
		return true
	}))
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	fmt.Printf("stream: %d %d %d\n", len(text), n, ru.Maxrss*1024)
}

func BenchmarkEncodeStream(b *testing.B) {
	tk, err := Load(filepath.Join("..", "..", "testdata", "hf", "llama-tiny-tok", "tokenizer.json"))
	require.NoError(b, err)
	text := fortunesText(b, 1<<20)
	for _, n := range []int{1 << 10, 4 << 10, 16 << 10, 64 << 10} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				_ = tk.EncodeStream(text, n, func([]int) bool { return true })
			}
			b.SetBytes(int64(len(text)))
		})
	}
}

func TestSpecialAffixes(t *testing.T) {
	for _, c := range []struct {
		dir            string
		prefix, suffix []int
	}{{"llama-tiny-tok", []int{1}, []int{}}, {"roberta-tiny-tok", []int{0}, []int{2}}} {
		tk, err := Load(filepath.Join("..", "..", "testdata", "hf", c.dir, "tokenizer.json"))
		require.NoError(t, err)
		p, s, err := tk.SpecialAffixes()
		require.NoError(t, err)
		assert.Equal(t, c.prefix, nonNil(p), c.dir)
		assert.Equal(t, c.suffix, nonNil(s), c.dir)
		text := fortunesText(t, 20_000)
		want, err := tk.EncodeIDs(text, true)
		require.NoError(t, err)
		got := append([]int(nil), p...)
		require.NoError(t, tk.EncodeStream(text, 1000, func(ids []int) bool { got = append(got, ids...); return true }))
		got = append(got, s...)
		assert.Equal(t, want, got, c.dir)
	}
}
