package glue

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/data"
	"github.com/blockllm/blockllm-go/hf/tokenizer"
	"github.com/blockllm/blockllm-go/torch"
)

func TestMain(m *testing.M) {
	if err := torch.Init(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

const robertaTok = "../../testdata/hf/roberta-tiny-tok/tokenizer.json"

func loadTok(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load(robertaTok)
	require.NoError(t, err)
	return tok
}

func demoDev(t *testing.T) *Dataset {
	t.Helper()
	ds, err := LoadFS(data.DemoGLUE(), data.DemoGLUETask, "dev")
	require.NoError(t, err)
	return ds
}

func TestEncodeSingleAndTruncation(t *testing.T) {
	tok := loadTok(t)
	ds := demoDev(t)
	full, err := Encode(tok, ds, 0)
	require.NoError(t, err)
	cut, err := Encode(tok, ds, 16)
	require.NoError(t, err)
	require.Len(t, full, ds.Len())
	longer := 0
	for i := range full {
		e, c := full[i].IDs, cut[i].IDs
		assert.Equal(t, 0, e[0], "starts with <s>")
		assert.Equal(t, 2, e[len(e)-1], "ends with </s>")
		assert.LessOrEqual(t, len(c), 16)
		assert.Equal(t, 2, c[len(c)-1], "truncation keeps </s>")
		if len(e) > 16 {
			longer++
			assert.Equal(t, e[:15], c[:15])
		} else {
			assert.Equal(t, e, c)
		}
		assert.Equal(t, ds.Examples[i].Label, full[i].Label)
	}
	assert.Greater(t, longer, 10, "the demo has sentences longer than 16 tokens")
	// The tokenizer's own settings are restored.
	assert.Nil(t, tok.Truncation())
	assert.Nil(t, tok.Padding())
}

func TestEncodePairs(t *testing.T) {
	tok := loadTok(t)
	ds, err := Load("testdata/jsonl", "rte", "train")
	require.NoError(t, err)
	ex, err := Encode(tok, ds, 20)
	require.NoError(t, err)
	for i, e := range ex {
		assert.LessOrEqual(t, len(e.IDs), 20)
		// RoBERTa pairs: <s> A </s></s> B </s>: three </s> tokens.
		n := 0
		for _, id := range e.IDs {
			if id == 2 {
				n++
			}
		}
		assert.Equal(t, 3, n, "example %d: %v", i, e.IDs)
	}
}

func TestCollate(t *testing.T) {
	ex := []Encoded{{IDs: []int{0, 5, 6, 2}, Label: 1}, {IDs: []int{0, 7, 2}, Label: 0}}
	require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
		b, err := Collate(s, ex, 1, false, true, torch.CPU)
		require.NoError(t, err)
		assert.Equal(t, []int64{2, 4}, b.InputIDs.Shape())
		assert.Equal(t, []int64{0, 5, 6, 2, 0, 7, 2, 1}, b.InputIDs.Int64s())
		assert.Equal(t, []int64{1, 1, 1, 1, 1, 1, 1, 0}, b.AttentionMask.Int64s())
		assert.Equal(t, torch.I64, b.Labels.DType())
		assert.Equal(t, []int64{1, 0}, b.Labels.Int64s())
		r, err := Collate(s, []Encoded{{IDs: []int{0, 2}, Label: 3.5}}, 1, true, true, torch.CPU)
		require.NoError(t, err)
		assert.Equal(t, torch.F32, r.Labels.DType())
		assert.Equal(t, []float64{3.5}, r.Labels.Float64s())
		n, err := Collate(s, ex, 1, false, false, torch.CPU)
		require.NoError(t, err)
		assert.Nil(t, n.Labels)
		_, err = Collate(s, nil, 1, false, false, torch.CPU)
		assert.Error(t, err)
		return nil
	}))
}

func TestBatchesEpochsAndResume(t *testing.T) {
	ex := make([]Encoded, 10)
	for i := range ex {
		ex[i] = Encoded{IDs: []int{0, 100 + i, 2}, Label: float64(i % 2)}
	}
	d, err := NewBatches(ex, 4, 1, false, 5, torch.CPU, 0, 1)
	require.NoError(t, err)
	assert.Equal(t, 3, d.StepsPerEpoch())
	s := torch.NewScope()
	defer s.Close()
	next := func(d *Batches) []int64 {
		b, err := d.Next(s)
		require.NoError(t, err)
		ids := b.InputIDs.Int64s()
		var out []int64
		for i := 1; i < len(ids); i += 3 {
			out = append(out, ids[i])
		}
		return out
	}
	var epoch0, epoch1 []int64
	sizes := []int{}
	for range 3 {
		b := next(d)
		sizes = append(sizes, len(b))
		epoch0 = append(epoch0, b...)
	}
	assert.Equal(t, []int{4, 4, 2}, sizes)
	assert.ElementsMatch(t, []int64{100, 101, 102, 103, 104, 105, 106, 107, 108, 109}, epoch0)
	first := next(d)
	assert.Equal(t, 1, d.Epoch())
	st, err := d.State()
	require.NoError(t, err)
	epoch1 = append(epoch1, first...)
	rest := [][]int64{next(d), next(d)}
	epoch1 = append(append(epoch1, rest[0]...), rest[1]...)
	assert.ElementsMatch(t, epoch0, epoch1)
	assert.NotEqual(t, epoch0, epoch1, "each epoch is reshuffled")

	// A fresh source restored from the state continues identically.
	d2, err := NewBatches(ex, 4, 1, false, 5, torch.CPU, 0, 1)
	require.NoError(t, err)
	require.NoError(t, d2.Restore(st))
	assert.Equal(t, rest[0], next(d2))
	assert.Equal(t, rest[1], next(d2))

	assert.Error(t, d2.Restore(json.RawMessage(`{"epoch":0,"pos":3,"examples":11}`)))
	_, err = NewBatches([]Encoded{{IDs: []int{0}, Label: -1}}, 2, 1, false, 0, torch.CPU, 0, 1)
	assert.ErrorContains(t, err, "example 0 has label -1")
	_, err = NewBatches(ex, 0, 1, false, 0, torch.CPU, 0, 1)
	assert.Error(t, err)
}

func TestParseTasks(t *testing.T) {
	ts, err := ParseTasks("all")
	require.NoError(t, err)
	var names []string
	for _, x := range ts {
		names = append(names, x.Name)
	}
	assert.Equal(t, PaperTasks, names)
	ts, err = ParseTasks("SST-2, all,wnli, sst2")
	require.NoError(t, err)
	require.Len(t, ts, 9)
	assert.Equal(t, "sst2", ts[0].Name)
	assert.Equal(t, "wnli", ts[8].Name)
	_, err = ParseTasks("sst3")
	assert.ErrorContains(t, err, `glue: unknown GLUE task "sst3"`)
	_, err = ParseTasks(",")
	assert.ErrorContains(t, err, "no task")
}

// BenchmarkEncode measures tokenization of the demo training set (3,222 sentences)
// with truncation.
func BenchmarkEncode(b *testing.B) {
	tok := loadTok(b)
	ds, err := LoadFS(data.DemoGLUE(), data.DemoGLUETask, "train")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := Encode(tok, ds, 128); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*ds.Len())/b.Elapsed().Seconds(), "examples/s")
}
