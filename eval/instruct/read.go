// Package instruct reads instruction-tuning data (Alpaca, prompt/completion,
// chat messages and ShareGPT conversations, as JSON arrays or JSON lines,
// optionally gzipped) and turns each example into token ids and labels for
// causal-LM fine-tuning with the loss on the responses only: prompt
// positions carry IgnoreIndex (-100), response positions their own token id
// (the model shifts labels by one, as Hugging Face's causal LMs do).
//
// Alpaca records use the Stanford Alpaca prompt template, prompt/completion
// records their prompt as is, both followed by the response and EOS; chat
// records are rendered with the model's chat template (package hf/chat) and
// only the assistant turns are learned. Encoder also truncates to a maximum
// length keeping part of every response, Pack packs short examples into
// full-length sequences, and Split makes a hashed validation split.
//
// Everything is pure Go. Errors are prefixed "instruct:" and name the file
// and line (JSON lines) or array element (JSON arrays) at fault.
package instruct

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/blockllm/blockllm-go/hf/chat"
)

// Layout is the shape of the records of a data file.
type Layout int

// Data layouts.
const (
	// Alpaca records have "instruction", "output" and an optional "input"
	// (tatsu-lab/stanford_alpaca's alpaca_data.json).
	Alpaca Layout = iota + 1
	// PromptCompletion records have "prompt" and "completion" strings (the
	// layout of OpenAI fine-tuning files and TRL's prompt-completion data).
	PromptCompletion
	// Messages records have "messages": a list of {"role", "content"} with
	// roles system, user and assistant (TRL's conversational layout).
	Messages
	// ShareGPT records have "conversations": a list of {"from", "value"}
	// with from = system, human (or user) and gpt (or assistant).
	ShareGPT
)

// String returns the layout's name.
func (l Layout) String() string {
	switch l {
	case Alpaca:
		return "alpaca"
	case PromptCompletion:
		return "prompt/completion"
	case Messages:
		return "messages"
	case ShareGPT:
		return "sharegpt"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// IsChat reports whether records of this layout are conversations rendered
// with a chat template.
func (l Layout) IsChat() bool { return l == Messages || l == ShareGPT }

// Record is one example as read.
type Record struct {
	Layout Layout
	// Alpaca fields.
	Instruction, Input, Output string
	// Prompt/completion fields.
	Prompt, Completion string
	// Messages holds the conversation of Messages and ShareGPT records, with
	// ShareGPT's speakers mapped to the roles system, user and assistant.
	Messages []chat.Message

	// File is the file the record came from and Line the 1-based line
	// where it starts; Index is its 0-based element in a JSON array, -1 in
	// JSON lines.
	File  string
	Line  int
	Index int
}

// Where names the record's place for error messages: "FILE:LINE" (JSON
// lines) or "FILE:LINE (element N)" (JSON arrays).
func (r *Record) Where() string {
	if r.Index >= 0 {
		return fmt.Sprintf("%s:%d (element %d)", r.File, r.Line, r.Index)
	}
	return fmt.Sprintf("%s:%d", r.File, r.Line)
}

// key returns a string that identifies the record's content, for the hashed
// validation split.
func (r *Record) key() string {
	var b strings.Builder
	b.WriteString(r.Layout.String())
	add := func(s string) {
		b.WriteByte(0)
		b.WriteString(s)
	}
	switch r.Layout {
	case Alpaca:
		add(r.Instruction)
		add(r.Input)
		add(r.Output)
	case PromptCompletion:
		add(r.Prompt)
		add(r.Completion)
	default:
		for _, m := range r.Messages {
			add(m.Role)
			add(m.Content)
		}
	}
	return b.String()
}

// ReadFile reads the records of one data file: a JSON array of objects or
// JSON lines (one object per line, blank lines skipped), gzip-compressed when
// the name ends in .gz or the content starts with gzip's magic bytes. The
// layout is detected from the first record; every record must follow it.
func ReadFile(path string) ([]Record, Layout, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("instruct: %v", err)
	}
	defer f.Close()
	return Read(f, path)
}

// ReadFiles reads several files (each with its own layout) and returns
// their records in order.
func ReadFiles(paths []string) ([]Record, error) {
	var out []Record
	for _, p := range paths {
		recs, _, err := ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

// ReadFS is ReadFile on a file of fsys.
func ReadFS(fsys fs.FS, path string) ([]Record, Layout, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("instruct: %v", err)
	}
	defer f.Close()
	return Read(f, path)
}

// Read reads records from r; name is the file name used in errors (and to
// recognise .gz). The whole (decompressed) file is read into memory.
func Read(r io.Reader, name string) ([]Record, Layout, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var src io.Reader = br
	if magic, _ := br.Peek(2); strings.HasSuffix(name, ".gz") || bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, 0, fmt.Errorf("instruct: %s: %v", name, err)
		}
		defer zr.Close()
		src = zr
	}
	data, err := io.ReadAll(src)
	if err != nil {
		return nil, 0, fmt.Errorf("instruct: %s: %v", name, err)
	}
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF}) // UTF-8 byte order mark
	t := bytes.TrimLeft(data, " \t\r\n")
	if len(t) == 0 {
		return nil, 0, fmt.Errorf("instruct: %s: no records", name)
	}
	if t[0] == '[' {
		return readArray(data, name)
	}
	return readLines(data, name)
}

func readLines(data []byte, name string) ([]Record, Layout, error) {
	var (
		recs   []Record
		layout Layout
	)
	for line := 1; len(data) > 0; line++ {
		b := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			b, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		rec := Record{File: name, Line: line, Index: -1}
		if err := decodeRecord(b, &rec, &layout); err != nil {
			return nil, 0, fmt.Errorf("instruct: %s:%d: %v", name, line, err)
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		return nil, 0, fmt.Errorf("instruct: %s: no records", name)
	}
	return recs, layout, nil
}

func readArray(data []byte, name string) ([]Record, Layout, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return nil, 0, fmt.Errorf("instruct: %s: %v", name, err)
	}
	var (
		recs   []Record
		layout Layout
	)
	// line numbers of element starts, counted incrementally
	line, counted := 1, 0
	lineAt := func(off int) int {
		// skip the separator and white space before the element
		for off < len(data) && (data[off] == ',' || data[off] == ' ' || data[off] == '\t' || data[off] == '\r' || data[off] == '\n') {
			off++
		}
		line += bytes.Count(data[counted:off], []byte{'\n'})
		counted = off
		return line
	}
	for i := 0; dec.More(); i++ {
		ln := lineAt(int(dec.InputOffset()))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, 0, fmt.Errorf("instruct: %s:%d (element %d): %v", name, ln, i, err)
		}
		rec := Record{File: name, Line: ln, Index: i}
		if err := decodeRecord(raw, &rec, &layout); err != nil {
			return nil, 0, fmt.Errorf("instruct: %s:%d (element %d): %v", name, ln, i, err)
		}
		recs = append(recs, rec)
	}
	if _, err := dec.Token(); err != nil {
		return nil, 0, fmt.Errorf("instruct: %s: after element %d: %v", name, len(recs)-1, err)
	}
	if len(recs) == 0 {
		return nil, 0, fmt.Errorf("instruct: %s: no records (empty array)", name)
	}
	return recs, layout, nil
}

// detect returns the layout of a record from its keys.
func detect(obj map[string]json.RawMessage) (Layout, error) {
	switch {
	case has(obj, "messages"):
		return Messages, nil
	case has(obj, "conversations"):
		return ShareGPT, nil
	case has(obj, "instruction"):
		return Alpaca, nil
	case has(obj, "prompt") || has(obj, "completion"):
		return PromptCompletion, nil
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, fmt.Sprintf("%q", k))
	}
	sort.Strings(keys)
	return 0, fmt.Errorf("unknown record layout (keys %s): want \"instruction\"/\"input\"/\"output\" (Alpaca), "+
		"\"prompt\"/\"completion\", \"messages\" (role/content) or \"conversations\" (ShareGPT from/value)", strings.Join(keys, ", "))
}

func has(obj map[string]json.RawMessage, k string) bool {
	_, ok := obj[k]
	return ok
}

// decodeRecord parses one record into rec; *layout is set from the first
// record and checked against the others.
func decodeRecord(data []byte, rec *Record, layout *Layout) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return fmt.Errorf("a record must be a JSON object, not %s", ute.Value)
		}
		return fmt.Errorf("invalid JSON: %v", err)
	}
	l, err := detect(obj)
	if err != nil {
		return err
	}
	if *layout == 0 {
		*layout = l
	} else if l != *layout {
		return fmt.Errorf("record has the %s layout but the file's first record has the %s layout; one file holds one layout", l, *layout)
	}
	rec.Layout = l
	switch l {
	case Alpaca:
		if rec.Instruction, err = str(obj, "instruction", true); err != nil {
			return err
		}
		if rec.Input, err = str(obj, "input", false); err != nil {
			return err
		}
		if rec.Output, err = str(obj, "output", true); err != nil {
			return err
		}
		if strings.TrimSpace(rec.Instruction) == "" {
			return errors.New(`empty "instruction"`)
		}
		if strings.TrimSpace(rec.Output) == "" {
			return errors.New(`empty response ("output")`)
		}
	case PromptCompletion:
		if rec.Prompt, err = str(obj, "prompt", true); err != nil {
			return err
		}
		if rec.Completion, err = str(obj, "completion", true); err != nil {
			return err
		}
		if strings.TrimSpace(rec.Completion) == "" {
			return errors.New(`empty response ("completion")`)
		}
	case Messages:
		if rec.Messages, err = messages(obj["messages"], "messages", "role", "content", roleOf); err != nil {
			return err
		}
	case ShareGPT:
		if rec.Messages, err = messages(obj["conversations"], "conversations", "from", "value", shareGPTRole); err != nil {
			return err
		}
	}
	return nil
}

// str returns the string field k; a missing optional field is "".
func str(obj map[string]json.RawMessage, k string, required bool) (string, error) {
	v, ok := obj[k]
	if !ok || string(v) == "null" {
		if required {
			return "", fmt.Errorf("missing field %q", k)
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("field %q must be a string, not %s", k, kind(v))
	}
	return s, nil
}

func kind(v json.RawMessage) string {
	t := bytes.TrimSpace(v)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func roleOf(r string) (string, bool) {
	switch r {
	case "system", "user", "assistant":
		return r, true
	}
	return "", false
}

// shareGPTRole maps ShareGPT speakers to chat roles.
func shareGPTRole(from string) (string, bool) {
	switch from {
	case "system":
		return "system", true
	case "human", "user":
		return "user", true
	case "gpt", "assistant":
		return "assistant", true
	}
	return "", false
}

// messages parses and checks a conversation: an optional system message
// first, then user and assistant turns alternating, starting with user and
// ending with a non-empty assistant reply.
func messages(raw json.RawMessage, field, roleKey, contentKey string, mapRole func(string) (string, bool)) ([]chat.Message, error) {
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("field %q must be an array of objects, not %s", field, kind(raw))
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("field %q is empty", field)
	}
	out := make([]chat.Message, len(items))
	for i, it := range items {
		where := fmt.Sprintf("%s[%d]", field, i)
		who, err := str(it, roleKey, true)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		role, ok := mapRole(who)
		if !ok {
			want := `"system", "user" or "assistant"`
			if roleKey == "from" {
				want = `"system", "human" (or "user") or "gpt" (or "assistant")`
			}
			return nil, fmt.Errorf("%s: unknown %s %q (want %s)", where, roleKey, who, want)
		}
		content, err := str(it, contentKey, true)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		out[i] = chat.Message{Role: role, Content: content}
	}
	// Roles: [system] user assistant user assistant ...
	start := 0
	if out[0].Role == "system" {
		start = 1
	}
	if start == len(out) {
		return nil, fmt.Errorf("field %q has only a system message and no assistant turn", field)
	}
	for i := start; i < len(out); i++ {
		want := "user"
		if (i-start)%2 == 1 {
			want = "assistant"
		}
		if out[i].Role != want {
			if out[i].Role == "system" {
				return nil, fmt.Errorf("%s[%d]: a system message may only come first", field, i)
			}
			return nil, fmt.Errorf("%s[%d]: role %q where %q was expected (turns alternate user, assistant, ... after an optional system message)", field, i, out[i].Role, want)
		}
		if want == "assistant" && strings.TrimSpace(out[i].Content) == "" {
			return nil, fmt.Errorf("%s[%d]: empty assistant response", field, i)
		}
	}
	if out[len(out)-1].Role != "assistant" {
		if len(out)-start == 1 {
			return nil, fmt.Errorf("field %q has no assistant turn", field)
		}
		return nil, fmt.Errorf("%s[%d]: the conversation ends with a user message that has no assistant reply", field, len(out)-1)
	}
	return out, nil
}
