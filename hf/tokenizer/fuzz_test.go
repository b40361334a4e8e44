package tokenizer

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// TestConcurrentEncode checks that goroutines sharing a tokenizer (and its
// word caches) get the same results as sequential encoding.
func TestConcurrentEncode(t *testing.T) {
	for _, d := range tokenizerDirs(t) {
		tk, err := Load(d)
		require.NoError(t, err)
		var texts []string
		for _, r := range readRows(t, filepath.Join(d, "encodings.jsonl")) {
			texts = append(texts, r.Text, r.Text+" "+r.Text, "x"+r.Text)
		}
		fresh, err := Load(d)
		require.NoError(t, err)
		want := make([][]int, len(texts))
		for i, s := range texts {
			want[i] = ids(t, fresh, s, true)
		}
		var wg sync.WaitGroup
		errs := make(chan string, 8*len(texts))
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for k := range texts {
					i := (k + g*7) % len(texts)
					e, err := tk.Encode(texts[i], true)
					if err != nil || !equalInts(e.IDs, nonNil(want[i])) {
						errs <- texts[i]
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for s := range errs {
			t.Errorf("%s: concurrent encoding of %q differs", filepath.Base(d), s)
		}
	}
}

func FuzzFromJSON(f *testing.F) {
	for _, d := range []string{"llama-tiny-tok", "roberta-tiny-tok"} {
		if data, err := os.ReadFile(filepath.Join(fixtureRoot(), d, "tokenizer.json")); err == nil {
			f.Add(data)
		}
	}
	f.Add(mistralJSON(f, nil))
	f.Add(bertJSON(f, nil))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"pre_tokenizer":{"type":"Split","pattern":{"Regex":"\\s+(?!\\S)|\\s+"},"behavior":"Isolated"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tk, err := FromJSON(data)
		if err != nil {
			return
		}
		for _, s := range []string{"", "Hello world", "  a\tb\n", "<s>é🤗</s>"} {
			e, err := tk.Encode(s, true)
			if err != nil {
				continue
			}
			for _, o := range e.Offsets {
				if o[0] < 0 || o[0] > o[1] || o[1] > len(s) {
					t.Fatalf("offsets %v out of range for %q", o, s)
				}
			}
			_, _ = tk.Decode(e.IDs, true)
		}
	})
}

// FuzzByteLevelRoundTrip: a byte-level BPE without normalizer decodes its
// own encoding back to the input.
func FuzzByteLevelRoundTrip(f *testing.F) {
	tk, err := Load(filepath.Join(fixtureRoot(), "roberta-tiny-tok"))
	if err != nil {
		f.Skip(err)
	}
	for _, s := range []string{"", "Hello world", "  leading and  double  spaces ", "日本語のテキスト", "emoji 🤗🚀 end", "tabs\tand\nnewlines\n\nhere", "<s> x </s><mask>", "e\u0301\u00a0\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		e, err := tk.Encode(s, false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tk.Decode(e.IDs, false)
		if err != nil {
			t.Fatal(err)
		}
		if got != s {
			t.Fatalf("round trip of %q gave %q (tokens %q)", s, got, e.Tokens)
		}
	})
}
