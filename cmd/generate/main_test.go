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
	"github.com/blockllm/blockllm-go/hf/chat"
	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/generate"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/hf/tokenizer"
	"github.com/blockllm/blockllm-go/torch"
)

const (
	tinyTok  = "../../testdata/hf/llama-tiny-tok/tokenizer.json"
	qwenChat = "../../testdata/chat/qwen2.5/tokenizer_config.json"
)

func runArgs(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"--threads", "2"}, args...), &out, &errb)
	return out.String(), errb.String(), err
}

func lines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev), sc.Text())
		evs = append(evs, ev)
	}
	return evs
}

func ints(v any) []int {
	var out []int
	for _, x := range v.([]any) {
		out = append(out, int(x.(float64)))
	}
	return out
}

// modelDir saves a random tiny Llama (grouped-query attention, eos id 5) with the
// fortunes tokenizer and, when chatConfig is set, that tokenizer_config.json.
func modelDir(t *testing.T, chatConfig string) string {
	t.Helper()
	require.NoError(t, torch.Init())
	c, err := config.LlamaPreset("llama-tiny")
	require.NoError(t, err)
	c.VocabSize = 1024
	c.MaxPositionEmbeddings = 256
	c.NumKeyValueHeads = 2
	c.InitializerRange = 0.2
	c.EOSTokenIDs = []int{5}
	m, err := llama.New(c, llama.Options{}, 3)
	require.NoError(t, err)
	defer m.Close()
	dir := t.TempDir()
	require.NoError(t, m.Save(dir))
	copyFile(t, tinyTok, filepath.Join(dir, "tokenizer.json"))
	if chatConfig != "" {
		copyFile(t, chatConfig, filepath.Join(dir, "tokenizer_config.json"))
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o644))
}

func loadTok(t *testing.T) *tokenizer.Tokenizer {
	tok, err := tokenizer.Load(tinyTok)
	require.NoError(t, err)
	return tok
}

// reference generates greedily with the library, recomputing the whole sequence each
// step (no KV cache).
func reference(t *testing.T, dir string, prompt []int, n int, eos []int) []int {
	m, err := llama.Load(dir, llama.Options{})
	require.NoError(t, err)
	defer m.Close()
	sess, err := m.NewSession(llama.SessionOptions{NoCache: true})
	require.NoError(t, err)
	r, err := generate.Generate(context.Background(), sess, prompt, generate.Options{MaxNewTokens: n, EOS: eos})
	require.NoError(t, err)
	return r.Tokens
}

// TestPrompt: the prompt is tokenized with the special tokens; the greedy tokens are
// those of recomputing the whole sequence each step; the text is their decoding after
// the prompt; the streamed text is the same text; each token after the prompt costs
// one position; --no-kv-cache gives the same tokens.
func TestPrompt(t *testing.T) {
	dir := modelDir(t, "")
	tok := loadTok(t)
	const text = "Once upon a time, a fortune"
	out, stderr, err := runArgs(t, "--model", dir, "--prompt", text, "--max-new-tokens", "24", "--json")
	require.NoError(t, err)
	evs := lines(t, out)
	require.Len(t, evs, 1)
	ev := evs[0]
	clitest.CheckFields(t, "generate", out)
	prompt, err := tok.EncodeIDs(text, true)
	require.NoError(t, err)
	assert.Equal(t, 1, prompt[0], "<s> first")
	assert.Equal(t, prompt, ints(ev["prompt_ids"]))
	ids := ints(ev["ids"])
	assert.Equal(t, reference(t, dir, prompt, 24, []int{5}), ids)
	assert.Equal(t, "max_new_tokens", ev["stop"])
	assert.Equal(t, float64(len(prompt)+24-1), ev["positions_computed"])
	assert.Equal(t, []int{5}, ints(ev["eos_ids"]))
	full, err := tok.Decode(append(append([]int(nil), prompt...), ids...), true)
	require.NoError(t, err)
	promptText, err := tok.Decode(prompt, true)
	require.NoError(t, err)
	assert.Equal(t, strings.TrimPrefix(full, promptText), ev["text"])
	assert.Contains(t, stderr, "24 tokens (stop: max_new_tokens)")

	streamed, _, err := runArgs(t, "--model", dir, "--prompt", text, "--max-new-tokens", "24")
	require.NoError(t, err)
	want := ev["text"].(string)
	if !strings.HasSuffix(want, "\n") {
		want += "\n"
	}
	assert.Equal(t, want, streamed)

	out, stderr, err = runArgs(t, "--model", dir, "--prompt", text, "--max-new-tokens", "24", "--json", "--no-kv-cache")
	require.NoError(t, err)
	ev2 := lines(t, out)[0]
	assert.Equal(t, ids, ints(ev2["ids"]))
	assert.Equal(t, false, ev2["kv_cache"])
	assert.Contains(t, stderr, "no KV cache")

	// --prompt-file, from a file and from stdin
	f := filepath.Join(t.TempDir(), "p.txt")
	require.NoError(t, os.WriteFile(f, []byte(text), 0o644))
	out, _, err = runArgs(t, "--model", dir, "--prompt-file", f, "--max-new-tokens", "24", "--json")
	require.NoError(t, err)
	assert.Equal(t, ids, ints(lines(t, out)[0]["ids"]))
	stdin = strings.NewReader(text)
	defer func() { stdin = os.Stdin }()
	out, _, err = runArgs(t, "--model", dir, "--prompt-file", "-", "--max-new-tokens", "24", "--json")
	require.NoError(t, err)
	assert.Equal(t, ids, ints(lines(t, out)[0]["ids"]))
}

// TestStopAtEOS: with the fourth greedy token named as an eos id in
// generation_config.json, generation stops at its first occurrence, which ends the
// ids but not the text.
func TestStopAtEOS(t *testing.T) {
	dir := modelDir(t, "")
	out, _, err := runArgs(t, "--model", dir, "--prompt", "A day", "--max-new-tokens", "20", "--json")
	require.NoError(t, err)
	ids := ints(lines(t, out)[0]["ids"])
	stop := ids[3]
	first := 0
	for ids[first] != stop {
		first++
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"eos_token_id": [`+itoa(stop)+`, 7]}`), 0o644))
	out, _, err = runArgs(t, "--model", dir, "--prompt", "A day", "--max-new-tokens", "20", "--json")
	require.NoError(t, err)
	ev := lines(t, out)[0]
	assert.Equal(t, "eos", ev["stop"])
	assert.Equal(t, ids[:first+1], ints(ev["ids"]))
	assert.Equal(t, []int{5, stop, 7}, ints(ev["eos_ids"]))
	tok := loadTok(t)
	prompt, err := tok.EncodeIDs("A day", true)
	require.NoError(t, err)
	full, err := tok.Decode(append(append([]int(nil), prompt...), ids[:first]...), true)
	require.NoError(t, err)
	promptText, err := tok.Decode(prompt, true)
	require.NoError(t, err)
	assert.Equal(t, strings.TrimPrefix(full, promptText), ev["text"], "the text leaves the eos token out")
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestSampling: a seed reproduces the tokens, another seed gives others, greedy is
// the default, and sampling flags without a temperature are refused.
func TestSampling(t *testing.T) {
	dir := modelDir(t, "")
	gen := func(args ...string) []int {
		out, _, err := runArgs(t, append([]string{"--model", dir, "--prompt", "Luck", "--max-new-tokens", "16", "--json"}, args...)...)
		require.NoError(t, err)
		return ints(lines(t, out)[0]["ids"])
	}
	a := gen("--temperature", "1.2", "--top-p", "0.95", "--seed", "5")
	assert.Equal(t, a, gen("--temperature", "1.2", "--top-p", "0.95", "--seed", "5"))
	assert.NotEqual(t, a, gen("--temperature", "1.2", "--top-p", "0.95", "--seed", "6"))
	assert.Equal(t, gen(), gen("--temperature", "0"), "greedy by default")
	assert.Equal(t, gen("--temperature", "1", "--top-k", "1", "--seed", "9"), gen(), "top-k 1 is greedy")

	_, _, err := runArgs(t, "--model", dir, "--prompt", "x", "--top-k", "5")
	assert.ErrorContains(t, err, "--top-k has no effect with greedy decoding: give --temperature > 0")
	_, _, err = runArgs(t, "--model", dir, "--prompt", "x", "--temperature", "1", "--top-p", "1.5")
	assert.ErrorContains(t, err, "top-p 1.5 must be in [0, 1]")

	// generation_config.json's do_sample makes sampling the default
	require.NoError(t, os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"do_sample": true, "temperature": 1.2, "top_p": 0.95}`), 0o644))
	assert.Equal(t, a, gen("--seed", "5"))
	assert.Equal(t, gen("--temperature", "0"), gen("--temperature", "0", "--seed", "5"))
}

// TestChat: the prompt is the chat template's rendering of the system and user
// messages with the generation prompt, tokenized without adding special tokens;
// --chat-template replaces the template; --messages reads a conversation; in chat
// mode the tokenizer's eos_token stops generation too.
func TestChat(t *testing.T) {
	dir := modelDir(t, qwenChat)
	tok := loadTok(t)
	out, _, err := runArgs(t, "--model", dir, "--chat", "Write a fortune about love.", "--system", "Be brief.", "--max-new-tokens", "10", "--json")
	require.NoError(t, err)
	ev := lines(t, out)[0]
	tmpl, err := chat.Load(dir, chat.Options{})
	require.NoError(t, err)
	want, err := tmpl.Render([]chat.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Write a fortune about love."}}, true)
	require.NoError(t, err)
	assert.Equal(t, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWrite a fortune about love.<|im_end|>\n<|im_start|>assistant\n", want)
	assert.Equal(t, want, ev["prompt"])
	ids, err := tok.EncodeIDs(want, false)
	require.NoError(t, err)
	assert.Equal(t, ids, ints(ev["prompt_ids"]))
	assert.NotEqual(t, 1, ids[0], "no <s> added: the template writes the special tokens")
	assert.Equal(t, reference(t, dir, ids, 10, []int{5}), ints(ev["ids"]))
	assert.Equal(t, []int{5}, ints(ev["eos_ids"]), "<|im_end|> is not in this vocabulary")

	// a template file, and a tokenizer_config.json whose eos_token is in the vocabulary
	tf := filepath.Join(t.TempDir(), "t.jinja")
	require.NoError(t, os.WriteFile(tf, []byte("{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"eos_token": "</s>", "bos_token": "<s>"}`), 0o644))
	out, _, err = runArgs(t, "--model", dir, "--chat", "Hi", "--chat-template", tf, "--max-new-tokens", "3", "--json")
	require.NoError(t, err)
	ev = lines(t, out)[0]
	assert.Equal(t, "[user] Hi\n[assistant] ", ev["prompt"])
	assert.Equal(t, []int{5, 2}, ints(ev["eos_ids"]), "chat mode stops at the tokenizer's eos_token too")

	msgs := filepath.Join(t.TempDir(), "m.json")
	require.NoError(t, os.WriteFile(msgs, []byte(`{"messages": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "B"}, {"role": "user", "content": "C"}]}`), 0o644))
	out, _, err = runArgs(t, "--model", dir, "--messages", msgs, "--chat-template", tf, "--max-new-tokens", "3", "--json")
	require.NoError(t, err)
	assert.Equal(t, "[user] A\n[assistant] B\n[user] C\n[assistant] ", lines(t, out)[0]["prompt"])

	require.NoError(t, os.WriteFile(msgs, []byte(`[{"role": "user", "content": "A"}, {"content": "B"}]`), 0o644))
	_, _, err = runArgs(t, "--model", dir, "--messages", msgs, "--chat-template", tf)
	assert.ErrorContains(t, err, msgs+": message 1: want a non-empty string \"role\"")
}

// TestInteractive: each line of stdin is a user turn; the second turn's prompt holds
// the first answer, and only the positions after the shared prefix are computed.
func TestInteractive(t *testing.T) {
	dir := modelDir(t, qwenChat)
	stdin = strings.NewReader("Hello there\n\nTell me a fortune\n")
	defer func() { stdin = os.Stdin }()
	out, _, err := runArgs(t, "--model", dir, "--interactive", "--max-new-tokens", "6", "--json")
	require.NoError(t, err)
	evs := lines(t, out)
	require.Len(t, evs, 2, "the empty line is skipped")
	first, second := evs[0], evs[1]
	assert.Contains(t, second["prompt"], first["prompt"].(string)+first["text"].(string))
	assert.Contains(t, second["prompt"], "Tell me a fortune")
	computed, total := second["positions_computed"].(float64), second["prompt_tokens"].(float64)+second["new_tokens"].(float64)-1
	assert.Less(t, computed, total-10, "the conversation so far comes from the KV cache")
}

func TestErrors(t *testing.T) {
	dir := modelDir(t, "")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--prompt", "x"}, "--model DIR is required"},
		{[]string{"--model", dir}, "give exactly one of --prompt"},
		{[]string{"--model", dir, "--prompt", "x", "--chat", "y"}, "give exactly one of --prompt"},
		{[]string{"--model", dir, "--prompt", "x", "--system", "y"}, "--system and --chat-template apply to the chat modes"},
		{[]string{"--model", dir, "--chat", "hi"}, "has neither tokenizer_config.json nor chat_template.jinja (--chat-template FILE gives one"},
		{[]string{"--model", dir, "--prompt", strings.Repeat("fortune cookie ", 150)}, "but " + dir + " takes at most 256 positions (max_position_embeddings in config.json)"},
		{[]string{"--model", dir, "--prompt", "x", "--max-new-tokens", "0"}, "--max-new-tokens 0 must be positive"},
		{[]string{"--model", "../../testdata/hf/roberta-tiny-sst2", "--prompt", "x"}, "needs a causal LM (llama)"},
		{[]string{"--model", dir, "--prompt-file", filepath.Join(dir, "missing.txt")}, "--prompt-file"},
	}
	for _, c := range cases {
		_, _, err := runArgs(t, c.args...)
		assert.ErrorContains(t, err, c.want, "%v", c.args)
	}
	noTemplate := modelDir(t, "")
	require.NoError(t, os.WriteFile(filepath.Join(noTemplate, "tokenizer_config.json"), []byte(`{"eos_token": "</s>"}`), 0o644))
	_, _, err := runArgs(t, "--model", noTemplate, "--chat", "hi")
	assert.ErrorContains(t, err, "has no chat template")
}

// TestMaxLength: generation stops at max_position_embeddings.
func TestMaxLength(t *testing.T) {
	dir := modelDir(t, "")
	tok := loadTok(t)
	text := strings.Repeat("luck ", 40)
	prompt, err := tok.EncodeIDs(text, true)
	require.NoError(t, err)
	require.Less(t, len(prompt), 200)
	out, _, err := runArgs(t, "--model", dir, "--prompt", text, "--max-new-tokens", "200", "--json")
	require.NoError(t, err)
	ev := lines(t, out)[0]
	assert.Equal(t, "max_length", ev["stop"])
	assert.Equal(t, 256-len(prompt), len(ints(ev["ids"])))
}
