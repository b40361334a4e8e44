package eval

import "testing"

// BenchmarkBlocksNLL measures validation-perplexity throughput of the tiny
// llama (tokens per second are reported).
func BenchmarkBlocksNLL(b *testing.B) {
	m := tinyLlama(b)
	ids := randomIDs(8*128, 9)
	var blocks [][]int
	for i := 0; i < len(ids); i += 128 {
		blocks = append(blocks, ids[i:i+128])
	}
	b.ResetTimer()
	for range b.N {
		if _, err := BlocksNLL(m, blocks, 8); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(ids))/b.Elapsed().Seconds(), "tokens/s")
}
