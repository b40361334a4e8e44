package generate

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/tokenizer"
)

// hand is a logits vector worked out by hand: softmax at temperature 1 over
// ids 1, 4, 2, 0, 3 (most likely first; 1 and 4 tie) is e^3, e^3, e^2, e^1, e^0
// over 51.278 = 0.3917, 0.3917, 0.1441, 0.0530, 0.0195.
var hand = []float32{1, 3, 2, 0, 3}

func TestCandidatesHandMade(t *testing.T) {
	e := math.Exp
	cases := []struct {
		name  string
		o     Sampling
		ids   []int
		probs []float64
	}{
		{"greedy: the first of the tied maxima", Sampling{}, []int{1}, []float64{1}},
		{"no limit", Sampling{Temperature: 1}, []int{1, 4, 2, 0, 3},
			[]float64{e(3) / (2*e(3) + e(2) + e(1) + 1), e(3) / (2*e(3) + e(2) + e(1) + 1), e(2) / (2*e(3) + e(2) + e(1) + 1), e(1) / (2*e(3) + e(2) + e(1) + 1), 1 / (2*e(3) + e(2) + e(1) + 1)}},
		{"top-k 2", Sampling{Temperature: 1, TopK: 2}, []int{1, 4}, []float64{0.5, 0.5}},
		{"top-k 3", Sampling{Temperature: 1, TopK: 3}, []int{1, 4, 2},
			[]float64{e(3) / (2*e(3) + e(2)), e(3) / (2*e(3) + e(2)), e(2) / (2*e(3) + e(2))}},
		// mass before id 4 is 0.3917 >= 0.3: only id 1
		{"top-p 0.3", Sampling{Temperature: 1, TopP: 0.3}, []int{1}, []float64{1}},
		// mass before id 2 is 0.7834 >= 0.5
		{"top-p 0.5", Sampling{Temperature: 1, TopP: 0.5}, []int{1, 4}, []float64{0.5, 0.5}},
		// mass before id 2 is 0.7834 < 0.9, before id 0 0.9275 >= 0.9
		{"top-p 0.9", Sampling{Temperature: 1, TopP: 0.9}, []int{1, 4, 2},
			[]float64{e(3) / (2*e(3) + e(2)), e(3) / (2*e(3) + e(2)), e(2) / (2*e(3) + e(2))}},
		// temperature first: at 0.5 the logits are 2, 6, 4, 0, 6 and the mass before id
		// 2 is 2e^6/(2e^6+e^4+e^2+1) = 0.9276 >= 0.9
		{"temperature 0.5 then top-p 0.9", Sampling{Temperature: 0.5, TopP: 0.9}, []int{1, 4}, []float64{0.5, 0.5}},
		// top-k first, then top-p renormalised over the three: mass before id 2 is 0.8446 < 0.9
		{"top-k 3 then top-p 0.9", Sampling{Temperature: 1, TopK: 3, TopP: 0.9}, []int{1, 4, 2},
			[]float64{e(3) / (2*e(3) + e(2)), e(3) / (2*e(3) + e(2)), e(2) / (2*e(3) + e(2))}},
		// top-k 3 then top-p 0.8: mass before id 2 is 0.8446 >= 0.8
		{"top-k 3 then top-p 0.8", Sampling{Temperature: 1, TopK: 3, TopP: 0.8}, []int{1, 4}, []float64{0.5, 0.5}},
		{"top-k 1 is greedy", Sampling{Temperature: 2, TopK: 1}, []int{1}, []float64{1}},
		{"top-k above the vocabulary", Sampling{Temperature: 1, TopK: 99, TopP: 0.5}, []int{1, 4}, []float64{0.5, 0.5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ids, probs, err := Candidates(hand, c.o)
			require.NoError(t, err)
			assert.Equal(t, c.ids, ids)
			require.Len(t, probs, len(c.probs))
			for i := range probs {
				assert.InDelta(t, c.probs[i], probs[i], 1e-12, "prob %d", i)
			}
		})
	}
}

// bruteCandidates is Candidates by the definition: sort everything, cut.
func bruteCandidates(logits []float32, o Sampling) ([]int, []float64) {
	ids := make([]int, len(logits))
	for i := range ids {
		ids[i] = i
	}
	sort.SliceStable(ids, func(a, b int) bool { return logits[ids[a]] > logits[ids[b]] })
	if o.TopK > 0 && o.TopK < len(ids) {
		ids = ids[:o.TopK]
	}
	p := make([]float64, len(ids))
	sum := 0.0
	for i, id := range ids {
		p[i] = math.Exp((float64(logits[id]) - float64(logits[ids[0]])) / o.Temperature)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	if o.TopP > 0 && o.TopP < 1 {
		mass := 0.0
		for i := range p {
			if i > 0 && mass >= o.TopP {
				ids, p = ids[:i], p[:i]
				break
			}
			mass += p[i]
		}
		sum = 0
		for _, v := range p {
			sum += v
		}
		for i := range p {
			p[i] /= sum
		}
	}
	return ids, p
}

// TestCandidatesLargeVocabulary: the heap and the growing nucleus give the
// candidates of a full sort, on a 50k vocabulary with repeated values.
func TestCandidatesLargeVocabulary(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, 50000)
	for i := range logits {
		logits[i] = float32(math.Round(r.NormFloat64()*3*64) / 64) // ties
	}
	for _, o := range []Sampling{
		{Temperature: 1, TopK: 50}, {Temperature: 0.7, TopP: 0.9}, {Temperature: 1.3, TopP: 0.95},
		{Temperature: 1, TopK: 1000, TopP: 0.5}, {Temperature: 0.2, TopP: 0.999}, {Temperature: 1, TopK: 20000},
	} {
		ids, probs, err := Candidates(logits, o)
		require.NoError(t, err)
		wantIDs, wantP := bruteCandidates(logits, o)
		require.Equal(t, wantIDs, ids, "%+v", o)
		for i := range probs {
			require.InDelta(t, wantP[i], probs[i], 1e-12)
		}
	}
}

// TestSamplerFrequencies: draws follow the candidates' probabilities.
func TestSamplerFrequencies(t *testing.T) {
	o := Sampling{Temperature: 1, TopK: 3, Seed: 7}
	s, err := NewSampler(o)
	require.NoError(t, err)
	ids, probs, err := Candidates(hand, o)
	require.NoError(t, err)
	counts := map[int]int{}
	const n = 40000
	for i := 0; i < n; i++ {
		id, err := s.Next(hand)
		require.NoError(t, err)
		counts[id]++
	}
	assert.Len(t, counts, 3, "only the top-k candidates are drawn: %v", counts)
	for i, id := range ids {
		// 5 standard deviations of a binomial proportion
		sd := math.Sqrt(probs[i] * (1 - probs[i]) / n)
		assert.InDelta(t, probs[i], float64(counts[id])/n, 5*sd, "token %d", id)
	}
}

func TestSamplingErrors(t *testing.T) {
	for _, o := range []Sampling{{Temperature: -1}, {Temperature: math.NaN()}, {TopK: -2}, {TopP: 1.5}, {TopP: -0.1}} {
		_, err := NewSampler(o)
		assert.Error(t, err, "%+v", o)
	}
	s, err := NewSampler(Sampling{Temperature: 1})
	require.NoError(t, err)
	_, err = s.Next([]float32{0, float32(math.NaN())})
	assert.ErrorContains(t, err, "logit 1 is NaN")
	_, err = s.Next([]float32{float32(math.Inf(-1))})
	assert.ErrorContains(t, err, "-inf")
	// -inf logits are never drawn
	for i := 0; i < 1000; i++ {
		id, err := s.Next([]float32{float32(math.Inf(-1)), 0, float32(math.Inf(-1))})
		require.NoError(t, err)
		require.Equal(t, 1, id)
	}
}

// randomLM is a deterministic fake model: the logits depend on the whole sequence.
type randomLM struct {
	vocab int
	calls int
}

func (m *randomLM) Logits(seq []int) ([]float32, error) {
	m.calls++
	h := uint64(14695981039346656037)
	for _, id := range seq {
		h = (h ^ uint64(id)) * 1099511628211
	}
	r := rand.New(rand.NewPCG(h, 0))
	out := make([]float32, m.vocab)
	for i := range out {
		out[i] = float32(r.NormFloat64() * 2)
	}
	return out, nil
}

// TestSeededSamplingReproducible: the same seed gives the same tokens; other
// seeds give other tokens.
func TestSeededSamplingReproducible(t *testing.T) {
	run := func(seed uint64) []int {
		r, err := Generate(context.Background(), &randomLM{vocab: 200}, []int{1, 2, 3},
			Options{Sampling: Sampling{Temperature: 1, TopK: 50, TopP: 0.95, Seed: seed}, MaxNewTokens: 30})
		require.NoError(t, err)
		require.Equal(t, StopMaxNewTokens, r.Stop)
		return r.Tokens
	}
	a := run(42)
	assert.Equal(t, a, run(42))
	distinct := 0
	for seed := uint64(0); seed < 5; seed++ {
		if b := run(seed); !assert.ObjectsAreEqual(a, b) {
			distinct++
		}
	}
	assert.Equal(t, 5, distinct, "every other seed gives other tokens")
	greedy, err := Generate(context.Background(), &randomLM{vocab: 200}, []int{1, 2, 3}, Options{MaxNewTokens: 30})
	require.NoError(t, err)
	assert.NotEqual(t, a, greedy.Tokens)
}

// scriptLM returns logits that make a scripted token the argmax at each step.
type scriptLM struct {
	prompt int
	script []int
	seqs   [][]int
}

func (m *scriptLM) Logits(seq []int) ([]float32, error) {
	m.seqs = append(m.seqs, append([]int(nil), seq...))
	out := make([]float32, 10)
	out[m.script[len(seq)-m.prompt]] = 5
	return out, nil
}

func TestStops(t *testing.T) {
	ctx := context.Background()
	lm := &scriptLM{prompt: 2, script: []int{4, 5, 9, 6, 7, 8, 3}}
	var streamed []int
	r, err := Generate(ctx, lm, []int{1, 1}, Options{MaxNewTokens: 10, EOS: []int{2, 9}, OnToken: func(id int) error {
		streamed = append(streamed, id)
		return nil
	}})
	require.NoError(t, err)
	assert.Equal(t, StopEOS, r.Stop)
	assert.Equal(t, []int{4, 5, 9}, r.Tokens, "the EOS token ends generation and is included")
	assert.Equal(t, r.Tokens, streamed, "every token is streamed as it comes")
	assert.Equal(t, [][]int{{1, 1}, {1, 1, 4}, {1, 1, 4, 5}}, lm.seqs, "one call per token, none after the last")

	lm = &scriptLM{prompt: 2, script: []int{4, 5, 9}}
	r, err = Generate(ctx, lm, []int{1, 1}, Options{MaxNewTokens: 2, EOS: []int{9}})
	require.NoError(t, err)
	assert.Equal(t, StopMaxNewTokens, r.Stop)
	assert.Equal(t, []int{4, 5}, r.Tokens)

	lm = &scriptLM{prompt: 2, script: []int{4, 5, 9}}
	r, err = Generate(ctx, lm, []int{1, 1}, Options{MaxNewTokens: 10, MaxLength: 4})
	require.NoError(t, err)
	assert.Equal(t, StopMaxLength, r.Stop)
	assert.Equal(t, []int{4, 5}, r.Tokens)

	_, err = Generate(ctx, lm, []int{1, 1, 1, 1}, Options{MaxNewTokens: 10, MaxLength: 4})
	assert.ErrorContains(t, err, "the prompt has 4 tokens and the model takes at most 4 positions")
	_, err = Generate(ctx, lm, nil, Options{MaxNewTokens: 10})
	assert.ErrorContains(t, err, "no tokens")
	_, err = Generate(ctx, lm, []int{1}, Options{})
	assert.ErrorContains(t, err, "max new tokens 0")

	stop := errors.New("enough")
	lm = &scriptLM{prompt: 2, script: []int{4, 5, 9}}
	r, err = Generate(ctx, lm, []int{1, 1}, Options{MaxNewTokens: 10, OnToken: func(id int) error { return stop }})
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, []int{4}, r.Tokens)

	cctx, cancel := context.WithCancel(ctx)
	lm = &scriptLM{prompt: 2, script: []int{4, 5, 9}}
	r, err = Generate(cctx, lm, []int{1, 1}, Options{MaxNewTokens: 10, OnToken: func(id int) error { cancel(); return nil }})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, StopInterrupted, r.Stop)
	assert.Equal(t, []int{4}, r.Tokens)
}

func tinyTokenizer(t *testing.T) *tokenizer.Tokenizer {
	tok, err := tokenizer.Load("../../testdata/hf/llama-tiny-tok/tokenizer.json")
	require.NoError(t, err)
	return tok
}

// TestTextStream: streamed pieces join to the text of the whole sequence, no piece
// holds half a character (byte-fallback spells é, 🫩 and 中 over several tokens),
// and the leading space of a continuation survives (a SentencePiece decoder strips
// the first one of a text).
func TestTextStream(t *testing.T) {
	tok := tinyTokenizer(t)
	prompt, err := tok.EncodeIDs("Once upon", true)
	require.NoError(t, err)
	gen, err := tok.EncodeIDs("a time, the café 中 said 🫩 hello.\nBye ü", false)
	require.NoError(t, err)
	multi := 0
	for _, id := range gen {
		s, _ := tok.IDToToken(id)
		if strings.HasPrefix(s, "<0x") {
			multi++
		}
	}
	require.Greater(t, multi, 6, "the test needs byte-fallback tokens")

	full, err := tok.Decode(append(append([]int(nil), prompt...), gen...), true)
	require.NoError(t, err)
	promptText, err := tok.Decode(prompt, true)
	require.NoError(t, err)
	want := strings.TrimPrefix(full, promptText)
	require.True(t, strings.HasPrefix(want, " a time"), want)

	st, err := NewTextStream(tok, prompt)
	require.NoError(t, err)
	var pieces []string
	for _, id := range gen {
		p, err := st.Add(id)
		require.NoError(t, err)
		assert.True(t, utf8.ValidString(p) && !strings.ContainsRune(p, utf8.RuneError), "piece %q", p)
		pieces = append(pieces, p)
	}
	rest, err := st.Flush()
	require.NoError(t, err)
	assert.Equal(t, want, strings.Join(pieces, "")+rest)
	empty := 0
	for _, p := range pieces {
		if p == "" {
			empty++
		}
	}
	assert.Greater(t, empty, 0, "tokens inside a character yield no text until it is complete")

	// An incomplete character at the end comes out of Flush as U+FFFD.
	st, err = NewTextStream(tok, nil)
	require.NoError(t, err)
	e9, ok := tok.TokenToID("<0xE4>")
	require.True(t, ok)
	p, err := st.Add(e9)
	require.NoError(t, err)
	assert.Equal(t, "", p)
	rest, err = st.Flush()
	require.NoError(t, err)
	assert.Equal(t, "\uFFFD", rest)
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"do_sample": true, "temperature": 0.6, "top_p": 0.9, "eos_token_id": [128001, 128009], "bos_token_id": 128000}`))
	require.NoError(t, err)
	assert.Equal(t, Sampling{Temperature: 0.6, TopK: DefaultTopK, TopP: 0.9}, c.Sampling())
	assert.Equal(t, []int{128001, 128009}, c.EOS)

	c, err = ParseConfig([]byte(`{"eos_token_id": 2, "top_k": null, "temperature": 0.7}`))
	require.NoError(t, err)
	assert.True(t, c.Sampling().Greedy(), "without do_sample, greedy")
	assert.Equal(t, 0, *c.TopK, "top_k null: no limit")
	assert.Equal(t, []int{2}, c.EOS)

	_, err = ParseConfig([]byte(`{"top_p": 2}`))
	assert.ErrorContains(t, err, `key "top_p"`)
	_, err = ParseConfig([]byte(`{"eos_token_id": "x"}`))
	assert.ErrorContains(t, err, `key "eos_token_id"`)
	_, err = ParseConfig([]byte(`{"do_sample": "yes"}`))
	assert.ErrorContains(t, err, `key "do_sample": "yes" is not a boolean`)

	dir := t.TempDir()
	c, err = LoadConfig(dir)
	require.NoError(t, err)
	assert.True(t, c.Sampling().Greedy())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"top_k": -1}`), 0o644))
	_, err = LoadConfig(dir)
	assert.ErrorContains(t, err, filepath.Join(dir, "generation_config.json"))
}

// TestTransformersWarpers: Candidates keeps the tokens transformers' temperature,
// top-k and top-p warpers keep, with the same probabilities
// (testdata/generate/hf_reference.json, written by reference.py there).
func TestTransformersWarpers(t *testing.T) {
	b, err := os.ReadFile("../../testdata/generate/hf_reference.json")
	require.NoError(t, err)
	var ref struct {
		Warpers []struct {
			Name   string
			Logits []float64
			Cases  []struct {
				Temperature float64
				TopK        int     `json:"top_k"`
				TopP        float64 `json:"top_p"`
				Kept        []int
				Probs       []float64
			}
		}
	}
	require.NoError(t, json.Unmarshal(b, &ref))
	require.Len(t, ref.Warpers, 2)
	for _, w := range ref.Warpers {
		logits := make([]float32, len(w.Logits))
		for i, v := range w.Logits {
			logits[i] = float32(v)
		}
		require.NotEmpty(t, w.Cases)
		for _, c := range w.Cases {
			o := Sampling{Temperature: c.Temperature, TopK: c.TopK, TopP: c.TopP}
			ids, probs, err := Candidates(logits, o)
			require.NoError(t, err)
			got := map[int]float64{}
			for i, id := range ids {
				got[id] = probs[i]
			}
			sorted := slices.Sorted(maps.Keys(got))
			assert.Equal(t, c.Kept, sorted, "%s %+v", w.Name, o)
			for i, id := range c.Kept {
				assert.InDelta(t, c.Probs[i], got[id], 1e-6, "%s %+v token %d", w.Name, o, id)
			}
		}
	}
}
