package llama

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/generate"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// testOpts are the options of the cache tests: BLOCKLLM_DEVICE's device (CUDA with
// libtorch's fused attention), f32; tol is the agreement asked of logits there.
func testOpts(t testing.TB) (Options, float64) {
	dev, err := torch.DeviceFromEnv()
	require.NoError(t, err)
	if dev.IsCUDA() {
		return Options{Device: dev, FusedSDPA: true}, 1e-4
	}
	return Options{Device: dev}, 2e-5
}

// randomConfig is a tiny Llama unlike the fixture in every way the cache touches:
// three query heads per key/value head, head_dim not hidden/heads, attention biases,
// tied embeddings, llama3 RoPE scaling (whose frequencies differ from the default
// at these positions).
func randomConfig(t *testing.T) *config.LlamaConfig {
	c, err := config.ParseLlama([]byte(`{"model_type": "llama", "vocab_size": 300, "hidden_size": 48,
		"intermediate_size": 100, "num_hidden_layers": 3, "num_attention_heads": 6, "num_key_value_heads": 2,
		"head_dim": 12, "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "attention_bias": true,
		"tie_word_embeddings": true, "initializer_range": 0.15, "eos_token_id": 2, "bos_token_id": 1,
		"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
		"original_max_position_embeddings": 16}, "rope_theta": 10000.0}`))
	require.NoError(t, err)
	return c
}

// testModels are the fixture (2 query heads per kv head) and the random model; the
// random one's biases are made non-zero.
func testModels(t *testing.T) map[string]*Model {
	opts, _ := testOpts(t)
	fixture, err := Load(tinyDir, opts)
	require.NoError(t, err)
	t.Cleanup(fixture.Close)
	random, err := New(randomConfig(t), opts, 5)
	require.NoError(t, err)
	t.Cleanup(random.Close)
	s := torch.NewScope()
	defer s.Close()
	g := torch.NewGenerator(11, torch.CPU)
	defer g.Close()
	for _, p := range random.Parameters() {
		if p.T.Dim() == 1 && p.Layer >= 0 { // norms around 1, biases around 0
			r := s.Randn(p.T.Shape(), torch.F32, torch.CPU, g).MulScalar(0.1)
			if strings.HasSuffix(p.Name, "norm.weight") {
				r = r.AddScalar(1)
			}
			p.T.CopyFrom(r)
		}
	}
	// a model whose heads are not grouped, for the square causal path
	c := tinyConfig(t)
	c.NumKeyValueHeads = c.NumAttentionHeads
	mha, err := New(c, opts, 6)
	require.NoError(t, err)
	t.Cleanup(mha.Close)
	return map[string]*Model{"fixture": fixture, "random": random, "mha": mha}
}

func randomIDs(n, vocab int, seed uint64) []int64 {
	s := torch.NewScope()
	defer s.Close()
	g := torch.NewGenerator(seed, torch.CPU)
	defer g.Close()
	return s.RandInt(0, int64(vocab), []int64{int64(n)}, torch.CPU, g).Int64s()
}

// TestForwardCachedMatchesForward: feeding a sequence in pieces (a prompt of 7, then
// one token at a time, then pieces of 3 and 5) gives at each piece's last position the
// logits Forward computes on the whole sequence, to float rounding; also for a batch
// of two sequences.
func TestForwardCachedMatchesForward(t *testing.T) {
	_, tol := testOpts(t)
	for name, m := range testModels(t) {
		for _, B := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/batch%d", name, B), func(t *testing.T) {
				const T = 30
				s := torch.NewScope()
				defer s.Close()
				var flat []int64
				for b := 0; b < B; b++ {
					flat = append(flat, randomIDs(T, m.Cfg.VocabSize, uint64(10+b))...)
				}
				in := s.FromInt64(flat, int64(B), T)
				out, err := m.Forward(s, &nn.Batch{InputIDs: in}, false)
				require.NoError(t, err)
				full := out.Logits // [B, T, V]
				cache, err := m.NewKVCache(B, 0)
				require.NoError(t, err)
				defer cache.Close()
				pieces := []int{7, 1, 1, 1, 1, 1, 3, 5, 1, 3, 1, 5}
				pos := 0
				for _, n := range pieces {
					lg, err := m.ForwardCached(s, in.Narrow(1, int64(pos), int64(n)), pos, cache)
					require.NoError(t, err)
					pos += n
					assert.Equal(t, pos, cache.Len())
					want := full.Select(1, int64(pos-1))
					require.Equal(t, want.Shape(), lg.Shape())
					assert.Less(t, maxDiff(want.Float64s(), lg.Float64s()), tol, "position %d", pos-1)
				}
				require.Equal(t, T, pos)
				assert.Greater(t, cache.Cap(), 0)
			})
		}
	}
}

// TestGreedyCachedEqualsRecompute is the contract: greedy generation with the KV
// cache gives the same tokens as recomputing the whole sequence at every step, and
// the logits of every step agree to float rounding.
func TestGreedyCachedEqualsRecompute(t *testing.T) {
	_, tol := testOpts(t)
	for name, m := range testModels(t) {
		t.Run(name, func(t *testing.T) {
			prompt := []int{1}
			for _, id := range randomIDs(9, m.Cfg.VocabSize, 3) {
				prompt = append(prompt, int(id))
			}
			run := func(noCache bool) (*generate.Result, [][]float32, int64) {
				sess, err := m.NewSession(SessionOptions{NoCache: noCache, Capacity: 8}) // grows
				require.NoError(t, err)
				defer sess.Close()
				rec := &recorder{lm: sess}
				r, err := generate.Generate(context.Background(), rec, prompt,
					generate.Options{MaxNewTokens: 60, MaxLength: m.Cfg.MaxPositionEmbeddings})
				require.NoError(t, err)
				return r, rec.logits, sess.Positions
			}
			cached, cl, cpos := run(false)
			recomputed, rl, rpos := run(true)
			require.Equal(t, generate.StopMaxNewTokens, cached.Stop)
			assert.Equal(t, recomputed.Tokens, cached.Tokens)
			distinct := map[int]bool{}
			for _, id := range cached.Tokens {
				distinct[id] = true
			}
			assert.Greater(t, len(distinct), 3, "the generated tokens vary (a meaningful comparison): %v", cached.Tokens)
			require.Len(t, cl, len(rl))
			for i := range cl {
				d := 0.0
				for j := range cl[i] {
					d = max(d, abs(float64(cl[i][j]-rl[i][j])))
				}
				assert.Less(t, d, tol, "step %d", i)
			}
			// each new token costs one position with the cache, the whole sequence without
			n := int64(len(cached.Tokens))
			assert.Equal(t, int64(len(prompt))+n-1, cpos)
			assert.Equal(t, n*int64(len(prompt))+n*(n-1)/2, rpos)
		})
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// recorder keeps a copy of every logits vector an LM returns.
type recorder struct {
	lm     generate.LM
	logits [][]float32
}

func (r *recorder) Logits(seq []int) ([]float32, error) {
	l, err := r.lm.Logits(seq)
	r.logits = append(r.logits, append([]float32(nil), l...))
	return l, err
}

// TestSeededSamplingWithCache: sampling with a seed gives the same tokens twice and
// the same as without the cache; another seed gives others.
func TestSeededSamplingWithCache(t *testing.T) {
	opts, _ := testOpts(t)
	m, err := Load(tinyDir, opts)
	require.NoError(t, err)
	defer m.Close()
	gen := func(seed uint64, noCache bool) []int {
		sess, err := m.NewSession(SessionOptions{NoCache: noCache})
		require.NoError(t, err)
		defer sess.Close()
		r, err := generate.Generate(context.Background(), sess, []int{1, 50, 60},
			generate.Options{Sampling: generate.Sampling{Temperature: 1.5, TopK: 40, TopP: 0.95, Seed: seed}, MaxNewTokens: 25})
		require.NoError(t, err)
		return r.Tokens
	}
	a := gen(1, false)
	assert.Equal(t, a, gen(1, false))
	assert.Equal(t, a, gen(1, true))
	assert.NotEqual(t, a, gen(2, false))
}

// TestSessionReusesPrefix: a second sequence that shares a prefix with the first is
// computed from the shared position on (the cache is truncated there) and gives the
// logits of a fresh session; the same sequence again recomputes only its last token.
func TestSessionReusesPrefix(t *testing.T) {
	opts, tol := testOpts(t)
	m, err := New(randomConfig(t), opts, 8)
	require.NoError(t, err)
	defer m.Close()
	a := []int{1, 5, 9, 13, 17, 21, 25, 29}
	b := []int{1, 5, 9, 13, 100, 101, 102}
	sess, err := m.NewSession(SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	_, err = sess.Logits(a)
	require.NoError(t, err)
	got, err := sess.Logits(b)
	require.NoError(t, err)
	assert.Equal(t, int64(len(a)+3), sess.Positions, "only b's last 3 tokens are computed")
	assert.Equal(t, len(b), sess.Cache().Len())
	fresh, err := m.NewSession(SessionOptions{NoCache: true})
	require.NoError(t, err)
	want, err := fresh.Logits(b)
	require.NoError(t, err)
	assert.InDeltaSlice(t, toF64(want), toF64(got), tol)
	again, err := sess.Logits(b)
	require.NoError(t, err)
	assert.Equal(t, int64(len(a)+4), sess.Positions)
	assert.InDeltaSlice(t, toF64(want), toF64(again), tol)

	_, err = sess.Logits([]int{1, 300})
	assert.ErrorContains(t, err, "token 300 at position 1 is outside the vocabulary [0, 300)")
	_, err = sess.Logits(nil)
	assert.Error(t, err)
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// TestKVCacheErrorsAndMemory: misuse is an error naming the mismatch; a preallocated
// cache does not grow; closing the session frees every tensor.
func TestKVCacheErrorsAndMemory(t *testing.T) {
	opts, _ := testOpts(t)
	m, err := Load(tinyDir, opts)
	require.NoError(t, err)
	defer m.Close()
	before := torch.LiveTensors()
	s := torch.NewScope()
	cache, err := m.NewKVCache(1, 40)
	require.NoError(t, err)
	// 2 layers x (K and V) x 2 kv heads x 40 positions x 16 x 4 bytes
	assert.Equal(t, int64(2*2*2*40*16*4), cache.Bytes())
	in := s.FromInt64([]int64{1, 2, 3}, 1, 3)
	_, err = m.ForwardCached(s, in, 1, cache)
	assert.ErrorContains(t, err, "position 1, but the KV cache holds 0 positions")
	_, err = m.ForwardCached(s, s.FromInt64([]int64{1, 2, 3, 4}, 2, 2), 0, cache)
	assert.ErrorContains(t, err, "batch 2, but the KV cache holds 1 sequences")
	for i := 0; i < 12; i++ {
		_, err = m.ForwardCached(s, in, cache.Len(), cache)
		require.NoError(t, err)
	}
	assert.Equal(t, 36, cache.Len())
	assert.Equal(t, 40, cache.Cap(), "preallocated: no growth")
	_, err = m.ForwardCached(s, s.FromInt64([]int64{4, 5, 6, 7, 8}, 1, 5), 36, cache)
	require.NoError(t, err)
	assert.Equal(t, 41, cache.Len())
	assert.Equal(t, 80, cache.Cap(), "grown by doubling")
	require.NoError(t, cache.Truncate(5))
	assert.Error(t, cache.Truncate(6))

	other, err := New(randomConfig(t), opts, 1)
	require.NoError(t, err)
	_, err = other.ForwardCached(s, in, 0, cache)
	assert.ErrorContains(t, err, "does not fit the model")
	other.Close()
	cache.Close()
	s.Close()
	assert.Equal(t, before, torch.LiveTensors(), "no tensor outlives the cache and the scope")
}

// TestForwardCachedBF16: in bf16 the cached logits agree with Forward's to bf16
// precision.
func TestForwardCachedBF16(t *testing.T) {
	opts, _ := testOpts(t)
	opts.DType = torch.BF16
	m, err := Load(tinyDir, opts)
	require.NoError(t, err)
	defer m.Close()
	s := torch.NewScope()
	defer s.Close()
	const T = 12
	in := s.FromInt64(randomIDs(T, 1024, 4), 1, T)
	out, err := m.Forward(s, &nn.Batch{InputIDs: in}, false)
	require.NoError(t, err)
	cache, err := m.NewKVCache(1, T)
	require.NoError(t, err)
	defer cache.Close()
	_, err = m.ForwardCached(s, in.Narrow(1, 0, T-1), 0, cache)
	require.NoError(t, err)
	lg, err := m.ForwardCached(s, in.Narrow(1, T-1, 1), T-1, cache)
	require.NoError(t, err)
	assert.Equal(t, torch.BF16, lg.DType())
	want := out.Logits.Select(1, T-1).Float64s()
	scale := 0.0
	for _, v := range want {
		scale = max(scale, abs(v))
	}
	assert.Less(t, maxDiff(want, lg.Float64s()), 0.05*scale)
}

// TestGreedyMatchesTransformers: greedy generation from the tiny fixture with the KV
// cache gives the tokens of transformers' generate (with and without its cache),
// 60 new tokens from each of three prompts (testdata/generate/hf_reference.json).
func TestGreedyMatchesTransformers(t *testing.T) {
	b, err := os.ReadFile("../../testdata/generate/hf_reference.json")
	require.NoError(t, err)
	var ref struct {
		Greedy struct {
			EOS          int `json:"eos_token_id"`
			MaxNewTokens int `json:"max_new_tokens"`
			Cases        []struct {
				Prompt  []int
				Cache   []int
				NoCache []int `json:"no_cache"`
			}
		}
	}
	require.NoError(t, json.Unmarshal(b, &ref))
	require.Len(t, ref.Greedy.Cases, 3)
	opts, _ := testOpts(t)
	m, err := Load(tinyDir, opts)
	require.NoError(t, err)
	defer m.Close()
	assert.Equal(t, []int{ref.Greedy.EOS}, m.Cfg.EOSTokenIDs)
	for _, c := range ref.Greedy.Cases {
		require.Equal(t, c.Cache, c.NoCache)
		sess, err := m.NewSession(SessionOptions{})
		require.NoError(t, err)
		r, err := generate.Generate(context.Background(), sess, c.Prompt,
			generate.Options{MaxNewTokens: ref.Greedy.MaxNewTokens, EOS: m.Cfg.EOSTokenIDs})
		sess.Close()
		require.NoError(t, err)
		assert.Equal(t, c.Cache, r.Tokens, "prompt %v", c.Prompt)
	}
}
