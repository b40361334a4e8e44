package tokenizer

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchCorpus returns English-like documents: Debian's fortunes when
// installed (split on the "%" lines), else the fixture texts repeated.
func benchCorpus(b *testing.B) []string {
	const want = 1 << 20 // about 1 MB of text
	var docs []string
	total := 0
	dir := "/usr/share/games/fortunes"
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if e.IsDir() || strings.Contains(e.Name(), ".") {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			for _, d := range strings.Split(string(data), "\n%\n") {
				if d = strings.TrimSpace(d); d != "" && total < want {
					docs = append(docs, d)
					total += len(d)
				}
			}
		}
	}
	if total == 0 {
		var texts []string
		for _, d := range tokenizerDirs(b) {
			for _, r := range readRows(b, filepath.Join(d, "encodings.jsonl")) {
				texts = append(texts, r.Text)
			}
		}
		for total < want {
			doc := strings.Join(texts, " ")
			docs = append(docs, doc)
			total += len(doc)
		}
	}
	return docs
}

// benchTokenizers: the roberta and llama fixtures, and "llama3", the
// fixture's byte-level BPE behind Llama-3's pre-tokenizer (Split with the
// cl100k regex, then ByteLevel) and post-processor.
func benchTokenizers(b *testing.B) map[string]*Tokenizer {
	out := map[string]*Tokenizer{}
	for _, name := range []string{"roberta-tiny-tok", "llama-tiny-tok"} {
		tk, err := Load(filepath.Join(fixtureRoot(), name))
		if err != nil {
			b.Fatal(err)
		}
		out[strings.TrimSuffix(name, "-tiny-tok")] = tk
	}
	js, err := json.Marshal(referenceVariants(b)["llama3"])
	if err != nil {
		b.Fatal(err)
	}
	if out["llama3"], err = FromJSON(js); err != nil {
		b.Fatal(err)
	}
	return out
}

var benchNames = []string{"roberta", "llama", "llama3"}

// reportCPU adds MB per CPU-second (process user+system time, GC included),
// a per-core throughput that stays meaningful on a loaded machine.
func reportCPU(b *testing.B, bytes int, cpu0 float64) {
	if cpu := cpuSeconds() - cpu0; cpu > 0 {
		b.ReportMetric(float64(bytes)*float64(b.N)/cpu/1e6, "MB/cpu-s")
	}
}

// BenchmarkEncode measures single-goroutine encoding throughput (MB/s is
// per core) of about 1 MB of English text, document by document.
func BenchmarkEncode(b *testing.B) {
	docs := benchCorpus(b)
	size := 0
	for _, d := range docs {
		size += len(d)
	}
	for _, name := range benchNames {
		tk := benchTokenizers(b)[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			ntok := 0
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				ntok = 0
				for _, d := range docs {
					e, err := tk.Encode(d, true)
					if err != nil {
						b.Fatal(err)
					}
					ntok += e.Len()
				}
			}
			reportCPU(b, size, cpu0)
			b.ReportMetric(float64(size)/float64(ntok), "bytes/token")
		})
	}
}

// BenchmarkEncodeBatch measures EncodeBatch over all cores.
func BenchmarkEncodeBatch(b *testing.B) {
	docs := benchCorpus(b)
	size := 0
	for _, d := range docs {
		size += len(d)
	}
	for _, name := range benchNames {
		tk := benchTokenizers(b)[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size))
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				if _, err := tk.EncodeBatch(docs, true); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, size, cpu0)
		})
	}
}

// BenchmarkDecode measures decoding throughput (MB of text out per second).
func BenchmarkDecode(b *testing.B) {
	docs := benchCorpus(b)
	for _, name := range benchNames {
		tk := benchTokenizers(b)[name]
		var all [][]int
		size := 0
		for _, d := range docs {
			e, err := tk.Encode(d, false)
			if err != nil {
				b.Fatal(err)
			}
			all = append(all, e.IDs)
			size += len(d)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size))
			cpu0 := cpuSeconds()
			defer func() { reportCPU(b, size, cpu0) }()
			for i := 0; i < b.N; i++ {
				for _, ids := range all {
					if _, err := tk.Decode(ids, false); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// largeBPEJSON builds a valid byte-level BPE tokenizer.json with about
// 128k tokens and as many merges (Llama-3 has 128,256 tokens and 280,147
// merges), merging random pairs of existing tokens.
func largeBPEJSON(b *testing.B, nVocab int) []byte {
	rng := rand.New(rand.NewPCG(1, 1))
	vocab := map[string]int{}
	var toks []string
	for i := 0; i < 256; i++ {
		s := byteToStr[i]
		vocab[s] = len(toks)
		toks = append(toks, s)
	}
	var merges [][2]string
	for len(toks) < nVocab {
		a, c := toks[rng.IntN(len(toks))], toks[rng.IntN(len(toks))]
		if len(a)+len(c) > 24 {
			continue
		}
		if _, ok := vocab[a+c]; ok {
			continue
		}
		vocab[a+c] = len(toks)
		toks = append(toks, a+c)
		merges = append(merges, [2]string{a, c})
	}
	data, err := json.Marshal(M{
		"pre_tokenizer": M{"type": "Sequence", "pretokenizers": []M{
			{"type": "Split", "pattern": M{"Regex": llama3Pattern}, "behavior": "Isolated", "invert": false},
			{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}}},
		"decoder": M{"type": "ByteLevel"},
		"model":   M{"type": "BPE", "vocab": vocab, "merges": merges, "ignore_merges": true},
	})
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkLoadLarge measures FromJSON on a Llama-3-sized tokenizer.json.
func BenchmarkLoadLarge(b *testing.B) {
	data := largeBPEJSON(b, 128000)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := FromJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}
