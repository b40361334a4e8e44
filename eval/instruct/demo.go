package instruct

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strings"

	"github.com/blockllm/blockllm-go/data"
	"github.com/blockllm/blockllm-go/eval/c4"
	"github.com/blockllm/blockllm-go/hf/chat"
)

// DemoNotice says what the demo instruction set is, for commands to print.
const DemoNotice = "demo data: a small instruction set made up from Debian's fortune cookies " +
	"(\"Write a fortune about love.\" answered by a fortune of that category); " +
	"it exercises instruction tuning end to end, it does not make a useful assistant"

// DemoFile is the name the demo records carry as their file.
const DemoFile = "demo:fortunes"

// demoTopics maps the fortune categories used by the demo to the topic the
// instruction names. Categories left out (ascii-art, translate-me,
// knghtbrd's IRC quotes, disclaimers, ...) do not read as a topic.
var demoTopics = map[string]string{
	"art": "art", "computers": "computers", "cookie": "life", "definitions": "the meaning of words",
	"drugs": "drugs", "education": "education", "food": "food", "goedel": "logic", "humorists": "humor",
	"kids": "children", "law": "the law", "linux": "Linux", "linuxcookie": "Linux", "literature": "literature",
	"love": "love", "magic": "magic", "medicine": "medicine", "men-women": "men and women", "news": "the news",
	"paradoxum": "paradoxes", "people": "people", "perl": "Perl", "pets": "pets", "platitudes": "platitudes",
	"politics": "politics", "riddles": "riddles", "science": "science", "songs-poems": "songs and poems",
	"sports": "sports", "startrek": "Star Trek", "tao": "the Tao", "wisdom": "wisdom", "work": "work",
	"zippy": "Zippy the Pinhead", "debian": "Debian",
}

// demoInstructions are the phrasings of the demo's instructions; each
// fortune gets one, chosen by a hash of its text.
var demoInstructions = []string{
	"Write a fortune about %s.",
	"Tell me a fortune cookie saying about %s.",
	"Give me a quotation about %s.",
	"Share a fortune on the subject of %s.",
}

// DemoOptions sizes the demo set.
type DemoOptions struct {
	// MaxChars drops fortunes longer than this many bytes (240 when 0), so
	// that examples stay short.
	MaxChars int
	// PerTopic caps the examples of one category (100 when 0).
	PerTopic int
}

// DemoFortunes builds the demo instruction set (see DemoNotice) from the
// embedded fortunes (data.Fortunes, the training shard, read with eval/c4):
// Alpaca records whose instruction asks for a fortune about the topic of a
// fortune's category and whose output is that fortune. The set is
// deterministic: fortunes in file order, the first PerTopic short enough of
// each category, the instruction's wording picked by a hash of the text.
// With the defaults it has 2,998 records over 35 categories.
func DemoFortunes(o DemoOptions) ([]Record, error) {
	if o.MaxChars <= 0 {
		o.MaxChars = 240
	}
	if o.PerTopic <= 0 {
		o.PerTopic = 100
	}
	texts, err := c4.OpenFS(data.Fortunes(), []string{data.FortunesTrain}, nil)
	if err != nil {
		return nil, fmt.Errorf("instruct: demo: %v", err)
	}
	defer texts.Close()
	cats, err := c4.OpenFS(data.Fortunes(), []string{data.FortunesTrain}, &c4.Options{TextField: "category"})
	if err != nil {
		return nil, fmt.Errorf("instruct: demo: %v", err)
	}
	defer cats.Close()
	count := map[string]int{}
	var recs []Record
	for {
		doc, err := texts.Next()
		cat, cerr := cats.Next()
		if errors.Is(err, io.EOF) && errors.Is(cerr, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("instruct: demo: %v", err)
		}
		if cerr != nil {
			return nil, fmt.Errorf("instruct: demo: %v", cerr)
		}
		if doc.Line != cat.Line {
			return nil, fmt.Errorf("instruct: demo: text and category readers disagree (%s:%d vs %d)", doc.File, doc.Line, cat.Line)
		}
		topic, ok := demoTopics[cat.Text]
		text := strings.TrimSpace(doc.Text)
		if !ok || text == "" || len(text) > o.MaxChars || count[cat.Text] >= o.PerTopic {
			continue
		}
		count[cat.Text]++
		h := fnv.New32a()
		h.Write([]byte(text))
		instr := fmt.Sprintf(demoInstructions[h.Sum32()%uint32(len(demoInstructions))], topic)
		recs = append(recs, Record{Layout: Alpaca, Instruction: instr, Output: text, File: DemoFile, Line: doc.Line, Index: -1})
	}
	if len(recs) == 0 {
		return nil, errors.New("instruct: demo: no fortunes matched")
	}
	return recs, nil
}

// AsChat returns an Alpaca or prompt/completion record as a two-turn
// conversation (user: the instruction, followed by a blank line and the
// input when there is one, or the prompt; assistant: the response), for
// training a chat model through its template. Chat records are returned as
// they are.
func AsChat(r Record) Record {
	var user, reply string
	switch r.Layout {
	case Alpaca:
		user, reply = r.Instruction, r.Output
		if r.Input != "" {
			user += "\n\n" + r.Input
		}
	case PromptCompletion:
		user, reply = r.Prompt, r.Completion
	default:
		return r
	}
	out := r
	out.Layout = Messages
	out.Instruction, out.Input, out.Output, out.Prompt, out.Completion = "", "", "", "", ""
	out.Messages = []chat.Message{{Role: "user", Content: user}, {Role: "assistant", Content: reply}}
	return out
}
