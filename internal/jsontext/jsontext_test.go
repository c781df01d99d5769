package jsontext

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "out/a.png", "a<b>&c", "quote\" back\\slash", "tab\tnl\ncr\r\x01\x7f", "é 日本", "\u2028\u2029", "bad \xff utf-8"} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		if got := AppendString([]byte("x"), s); string(got) != "x"+string(bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Errorf("AppendString(%q) = %s, want x%s", s, got, want.Bytes())
		}
	}
}

func TestMarshal(t *testing.T) {
	got, err := Marshal(map[string]any{"b": "<x>", "a": []int{1}})
	if err != nil || string(got) != `{"a":[1],"b":"<x>"}` {
		t.Errorf("Marshal = %s, %v", got, err)
	}
}
