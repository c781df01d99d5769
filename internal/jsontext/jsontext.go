// Package jsontext writes JSON as lifeos keeps it in records, outputs and
// items: encoding/json's encoding without its HTML escaping (an
// expression's "<" stays readable) and without the encoder's trailing
// newline.
package jsontext

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// Marshal returns v's JSON: map keys sorted, as encoding/json writes them.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// AppendString appends s as a JSON string, as Marshal writes it. Plain
// ASCII (paths, digests) is copied as it is; anything else takes the
// encoder's rules (control characters, U+2028, invalid UTF-8).
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
