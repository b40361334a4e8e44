package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/cmd/internal/clitest"
	"github.com/blockllm/blockllm-go/data"
	"github.com/blockllm/blockllm-go/eval"
	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/hf/tokenizer"
	"github.com/blockllm/blockllm-go/torch"
)

const (
	tinyTok     = "../../testdata/hf/llama-tiny-tok/tokenizer.json"
	tinyRoberta = "../../testdata/hf/roberta-tiny-sst2"
)

func runArgs(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"--threads", "2"}, args...), &out, &errb)
	return out.String(), err
}

func events(t *testing.T, out string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev), sc.Text())
		evs = append(evs, ev)
	}
	return evs
}

// tinyLlamaDir saves a random tiny Llama with the fortunes tokenizer.
func tinyLlamaDir(t *testing.T) string {
	t.Helper()
	require.NoError(t, torch.Init())
	c, err := config.LlamaPreset("llama-tiny")
	require.NoError(t, err)
	c.VocabSize = 1024
	c.MaxPositionEmbeddings = 128
	c.InitializerRange = 0.1
	m, err := llama.New(c, llama.Options{}, 3)
	require.NoError(t, err)
	defer m.Close()
	dir := t.TempDir()
	require.NoError(t, m.Save(dir))
	b, err := os.ReadFile(tinyTok)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644))
	return dir
}

// TestPerplexityFiles: the command's numbers equal eval.SlidingWindow over
// the same tokens; a text file and a C4 JSON-lines file are both read, and
// the token count follows from the window layout.
func TestPerplexityFiles(t *testing.T) {
	dir := tinyLlamaDir(t)
	text := "A fortune a day keeps the doctor away.\n\nNever trust a computer you cannot throw out a window.\n\nTo err is human."
	txt := filepath.Join(t.TempDir(), "a.txt")
	require.NoError(t, os.WriteFile(txt, []byte(text), 0o644))
	out, err := runArgs(t, "--model", dir, "--ppl", txt+","+filepath.Join("../../data/fortunes", data.FortunesValidation),
		"--seq-len", "32", "--stride", "32", "--max-tokens", "300", "--json")
	require.NoError(t, err)
	evs := events(t, out)
	require.Len(t, evs, 3)
	assert.Equal(t, "ppl", evs[0]["event"])
	assert.Equal(t, "ppl_total", evs[2]["event"])

	tok, err := tokenizer.Load(tinyTok)
	require.NoError(t, err)
	ids, err := fileTokens(txt, tok, 0)
	require.NoError(t, err)
	assert.Equal(t, tok.BOS(), ids[0])
	m, err := llama.Load(dir, llama.Options{FusedSDPA: true}) // as the command (--fused-sdpa defaults on)
	require.NoError(t, err)
	defer m.Close()
	want, err := eval.SlidingWindow(m, ids, eval.WindowOptions{MaxLen: 32, Stride: 32})
	require.NoError(t, err)
	windows := (len(ids) + 31) / 32
	assert.Equal(t, float64(len(ids)-windows), evs[0]["tokens"])
	assert.InDelta(t, want.Perplexity(), evs[0]["ppl"].(float64), 1e-9*want.Perplexity())
	assert.Equal(t, float64(300-10), evs[1]["tokens"]) // 300 tokens in 10 windows

	// The table form.
	out, err = runArgs(t, "--model", dir, "--ppl", txt, "--seq-len", "16")
	require.NoError(t, err)
	assert.Contains(t, out, "window 16, stride 8")
	assert.Contains(t, out, "Perplexity")
}

func TestGLUEScore(t *testing.T) {
	glueDir, cleanup, err := data.DemoGLUEDir()
	require.NoError(t, err)
	defer cleanup()
	out, err := runArgs(t, "--model", tinyRoberta, "--task", "sst2", "--data", glueDir, "--json", "--batch-size", "32")
	require.NoError(t, err)
	evs := events(t, out)
	require.Len(t, evs, 2)
	assert.Equal(t, "sst2", evs[0]["task"])
	assert.Equal(t, 400.0, evs[0]["n"])
	acc := evs[0]["score"].(float64)
	assert.True(t, acc >= 0 && acc <= 100)
	assert.Equal(t, acc, evs[1]["average"])
	out, err = runArgs(t, "--model", tinyRoberta, "--task", "sst2", "--data", glueDir)
	require.NoError(t, err)
	assert.Contains(t, out, "SST-2")
}

func TestErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "--model DIR is required"},
		{[]string{"--model", tinyRoberta}, "exactly one of --ppl"},
		{[]string{"--model", tinyRoberta, "--task", "sst2"}, "--task needs --data"},
		{[]string{"--model", tinyRoberta, "--ppl", "x.txt"}, `needs a causal LM`},
		{[]string{"--model", tinyRoberta, "--task", "stsb", "--data", "."}, "needs 1"},
		{[]string{"--model", "/nonexistent", "--ppl", "x.txt"}, "/nonexistent"},
	}
	for _, c := range cases {
		_, err := runArgs(t, c.args...)
		if assert.Error(t, err, "%v", c.args) {
			assert.Contains(t, err.Error(), c.want, "%v", c.args)
		}
	}
	dir := tinyLlamaDir(t)
	_, err := runArgs(t, "--model", dir, "--ppl", "/nonexistent/*.json")
	assert.ErrorContains(t, err, "/nonexistent")
	_, err = runArgs(t, "--model", dir, "--ppl", tinyTok, "--seq-len", "4096")
	assert.ErrorContains(t, err, "exceeds the model's max_position_embeddings 128")
}

// TestGLUEScoreLlama: a causal LM without a score head is refused for GLUE scoring; a
// Llama classifier is scored.
func TestGLUEScoreLlama(t *testing.T) {
	glueDir, cleanup, err := data.DemoGLUEDir()
	require.NoError(t, err)
	defer cleanup()
	_, err = runArgs(t, "--model", "../../testdata/hf/llama-tiny", "--task", "sst2", "--data", glueDir)
	assert.ErrorContains(t, err, "no trained classification head (missing score.weight)")
	c, err := llama.LoadClassifier("../../testdata/hf/llama-tiny", llama.Options{}, []string{"negative", "positive"}, 3)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, c.Save(dir))
	c.Close()
	out, err := runArgs(t, "--model", dir, "--task", "sst2", "--data", glueDir, "--json")
	require.NoError(t, err)
	evs := events(t, out)
	require.Len(t, evs, 2)
	assert.Equal(t, 400.0, evs[0]["n"])
}

// TestJSONFields: the JSON lines of --ppl and --task keep their fields (golden field
// sets in testdata/jsonfields/eval.json).
func TestJSONFields(t *testing.T) {
	dir := tinyLlamaDir(t)
	txt := filepath.Join(t.TempDir(), "a.txt")
	require.NoError(t, os.WriteFile(txt, []byte(strings.Repeat("the quick brown fox jumps over the lazy dog. ", 20)), 0o644))
	out1, err := runArgs(t, "--model", dir, "--ppl", txt, "--seq-len", "32", "--json")
	require.NoError(t, err)
	gdir, cleanup, err := data.DemoGLUEDir()
	require.NoError(t, err)
	defer cleanup()
	out2, err := runArgs(t, "--model", tinyRoberta, "--task", "sst2", "--data", gdir, "--json")
	require.NoError(t, err)
	clitest.CheckFields(t, "eval", out1+out2)
}

// TestFileTokensLongDocument: a 30 MB text file that is one document (no blank line)
// with --max-tokens 1000 gives the first 1000 tokens of the text (the leading <s>
// included), as encoding its start whole does, without tokenizing the rest.
func TestFileTokensLongDocument(t *testing.T) {
	tok, err := tokenizer.Load(tinyTok)
	require.NoError(t, err)
	line := "the quick brown fox jumps over the lazy dog, and then some more words follow it. "
	big := strings.Repeat(line, (30<<20)/len(line)+1)
	path := filepath.Join(t.TempDir(), "one-document.txt")
	require.NoError(t, os.WriteFile(path, []byte(big), 0o644))
	ids, err := fileTokens(path, tok, 1000)
	require.NoError(t, err)
	require.Len(t, ids, 1000)
	want, err := tok.EncodeIDs(big[:20000], true)
	require.NoError(t, err)
	assert.Equal(t, want[:1000], ids)
}
