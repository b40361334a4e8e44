package tokenizer

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// testdata/truncation.json.gz holds what Hugging Face tokenizers 0.23.2
// returns (ids, type ids, attention and special-tokens masks, overflowing
// pieces) for the configurations of truncConfigs: three tokenizers (RoBERTa
// processing, BERT processing, Llama template) with longest_first /
// only_first / only_second truncation, strides, left and right direction,
// and batch-longest / fixed padding, on single inputs, all ordered pairs of
// truncTexts (except with a stride, where HF aborts on short pairs) and
// batches.

func truncConfigs(t testing.TB) []M {
	v := referenceVariants(t)
	var out []M
	add := func(name, base string, trunc, pad any) {
		m := cloneM(t, v[base])
		m["truncation"] = trunc
		m["padding"] = pad
		js, _ := json.Marshal(m)
		noPairs := false
		if tm, ok := trunc.(M); ok && tm["stride"].(int) > 0 {
			noPairs = true
		}
		out = append(out, M{"name": name, "tokenizer_json": string(js), "no_pairs": noPairs})
	}
	tr := func(max int, strat string, stride int, dir string) M {
		return M{"max_length": max, "strategy": strat, "stride": stride, "direction": dir}
	}
	for _, base := range []string{"roberta", "bert", "llama"} {
		add(base+"-lf12", base, tr(12, "LongestFirst", 0, "Right"), nil)
		add(base+"-lf12s3", base, tr(12, "LongestFirst", 3, "Right"), nil)
		add(base+"-lf9s2L", base, tr(9, "LongestFirst", 2, "Left"), nil)
		add(base+"-of16s2L", base, tr(16, "OnlyFirst", 2, "Left"), nil)
		add(base+"-os16", base, tr(16, "OnlySecond", 0, "Right"), nil)
		add(base+"-padL", base, tr(20, "LongestFirst", 0, "Right"), M{"strategy": "BatchLongest", "direction": "Left", "pad_to_multiple_of": 8, "pad_id": 1, "pad_type_id": 0, "pad_token": "<pad>"})
		add(base+"-padF", base, nil, M{"strategy": M{"Fixed": 24}, "direction": "Right", "pad_to_multiple_of": nil, "pad_id": 0, "pad_type_id": 3, "pad_token": "[PAD]"})
	}
	return out
}

func truncTexts() ([]string, [][2]string) {
	texts := []string{"", "a", "Hello world", "The quick brown fox jumps over the lazy dog.",
		"It's a test: don't stop; won't (maybe)! And then some more words to make it long enough for several windows of overflow.",
		"numbers 12345 and 3.14159", "  leading and  double  spaces ", "short", "x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x"}
	var pairs [][2]string
	for _, a := range texts {
		for _, b := range texts {
			pairs = append(pairs, [2]string{a, b})
		}
	}
	return texts, pairs
}

type encRef struct {
	IDs       []int    `json:"ids"`
	TypeIDs   []int    `json:"type_ids"`
	Attention []int    `json:"attention"`
	Special   []int    `json:"special"`
	Overflow  []encRef `json:"overflow"`
	Error     string   `json:"error"`
}

func checkEnc(t *testing.T, what string, want encRef, got *Encoding, err error) bool {
	if want.Error != "" {
		if err == nil {
			t.Errorf("%s: want error %s, got %v", what, want.Error, got.IDs)
			return false
		}
		return true
	}
	if err != nil {
		t.Errorf("%s: unexpected error %v (want %v)", what, err, want.IDs)
		return false
	}
	ok := equalInts(got.IDs, want.IDs) && equalInts(got.TypeIDs, want.TypeIDs) && equalInts(got.AttentionMask, want.Attention)
	if want.Special != nil {
		ok = ok && equalInts(got.SpecialTokensMask, want.Special)
	}
	if len(got.Overflowing) != len(want.Overflow) {
		ok = false
	} else {
		for i, o := range want.Overflow {
			g := got.Overflowing[i]
			if !(equalInts(g.IDs, o.IDs) && equalInts(g.TypeIDs, o.TypeIDs) && equalInts(g.AttentionMask, o.Attention)) {
				t.Logf("%s overflow %d: got %v %v %v want %v %v %v", what, i, g.IDs, g.TypeIDs, g.AttentionMask, o.IDs, o.TypeIDs, o.Attention)
				ok = false
			}
		}
	}
	if !ok {
		var ov [][]int
		for _, o := range got.Overflowing {
			ov = append(ov, o.IDs)
		}
		var wov [][]int
		for _, o := range want.Overflow {
			wov = append(wov, o.IDs)
		}
		t.Errorf("%s:\n got  %v %v %v %v ov %v\n want %v %v %v %v ov %v", what, got.IDs, got.TypeIDs, got.AttentionMask, got.SpecialTokensMask, ov, want.IDs, want.TypeIDs, want.Attention, want.Special, wov)
	}
	return ok
}

func TestReferenceTruncation(t *testing.T) {
	f, err := os.Open("testdata/truncation.json.gz")
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	var out []struct {
		Name   string          `json:"name"`
		Single []encRef        `json:"single"`
		Pairs  []encRef        `json:"pairs"`
		Batch  json.RawMessage `json:"batch"`
	}
	require.NoError(t, json.NewDecoder(zr).Decode(&out))
	require.NotEmpty(t, out)
	cfgs := truncConfigs(t)
	texts, pairs := truncTexts()
	for ci, res := range out {
		tk, err := FromJSON([]byte(cfgs[ci]["tokenizer_json"].(string)))
		require.NoError(t, err)
		require.Equal(t, cfgs[ci]["name"], res.Name)
		require.Len(t, res.Single, len(texts))
		for i, w := range res.Single {
			e, err := tk.Encode(texts[i], true)
			checkEnc(t, res.Name+" single "+texts[i], w, e, err)
		}
		for i, w := range res.Pairs {
			e, err := tk.EncodePair(pairs[i][0], pairs[i][1], true)
			checkEnc(t, res.Name+" pair "+pairs[i][0]+" | "+pairs[i][1], w, e, err)
		}
		var batch []encRef
		if json.Unmarshal(res.Batch, &batch) == nil {
			encs, err := tk.EncodeBatch(texts, true)
			require.NoError(t, err)
			for i, w := range batch {
				checkEnc(t, res.Name+" batch "+texts[i], w, encs[i], nil)
			}
		} else {
			_, err := tk.EncodeBatch(texts, true)
			require.Error(t, err, res.Name+" batch: HF says %s", res.Batch)
		}
	}
}
