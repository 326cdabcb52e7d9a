package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func validKey(t testing.TB) (RawKey, string, []byte) {
	t.Helper()
	id, err := NewKeyID()
	if err != nil {
		t.Fatal(err)
	}
	sec, err := newSecret()
	if err != nil {
		t.Fatal(err)
	}
	return FormatKey(id, sec), id, sec
}

func TestParseKey(t *testing.T) {
	raw, id, sec := validKey(t)
	good := raw.Reveal()
	secretText := good[len(KeyPrefix)+KeyIDLen+1:]
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"valid", good, true},
		{"empty", "", false},
		{"prefix only", KeyPrefix, false},
		{"wrong prefix", "mxgx_" + good[5:], false},
		{"upper prefix", "MXGW_" + good[5:], false},
		{"upper id", KeyPrefix + strings.ToUpper(id) + "_" + secretText, false},
		{"id with 1", KeyPrefix + "1" + id[1:] + "_" + secretText, false},
		{"id too short", KeyPrefix + id[1:] + "_" + secretText, false},
		{"missing separator", KeyPrefix + id + "-" + secretText, false},
		{"secret too short", good[:len(good)-1], false},
		{"secret too long", good + "A", false},
		{"secret bad char", good[:len(good)-1] + "+", false},
		{"secret padded", good[:len(good)-1] + "=", false},
		{"non-canonical secret", good[:len(good)-1] + flipLowBits(good[len(good)-1]), false},
		{"trailing space", good + " ", false},
		{"leading space", " " + good[1:], false},
		{"bearer inside", "Bearer " + good, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseKey(tc.in)
			if tc.ok {
				if err != nil {
					t.Fatalf("ParseKey: %v", err)
				}
				if c.ID != id || !bytes.Equal(c.secret, sec) {
					t.Fatalf("ParseKey = %s/%x, want %s/%x", c.ID, c.secret, id, sec)
				}
				return
			}
			if !errors.Is(err, ErrMalformedKey) {
				t.Fatalf("ParseKey(%q) = %v, want ErrMalformedKey", tc.in, err)
			}
			if tc.in != "" && strings.Contains(err.Error(), tc.in) {
				t.Fatal("error repeats the input")
			}
		})
	}
}

// flipLowBits changes a final base64 character so that it sets the two
// spare bits: the decoder accepts the bytes but the text is not canonical.
func flipLowBits(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return string(alphabet[(i&^3)|1])
}

func FuzzParseKey(f *testing.F) {
	raw, _, _ := validKey(f)
	f.Add(raw.Reveal())
	f.Add("")
	f.Add("mxgw_")
	f.Add("mxgw_aaaaaaaaaaaaaaaa_")
	f.Add("mxgw_aaaaaaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("mxgw_aaaaaaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseKey(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedKey) {
				t.Fatalf("error %v is not ErrMalformedKey", err)
			}
			return
		}
		if len(c.secret) != SecretBytes || !IsKeyID(c.ID) {
			t.Fatalf("accepted %q with id %q and %d-byte secret", s, c.ID, len(c.secret))
		}
		// Round trip: an accepted key formats back to exactly the input.
		if got := FormatKey(c.ID, c.secret).Reveal(); got != s {
			t.Fatalf("round trip %q -> %q", s, got)
		}
	})
}

func TestNewKeysAreDistinctAndParse(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		raw, id, _ := validKey(t)
		if seen[id] {
			t.Fatal("duplicate id")
		}
		seen[id] = true
		if !IsKeyID(id) {
			t.Fatalf("NewKeyID %q is not a key id", id)
		}
		if _, err := ParseKey(raw.Reveal()); err != nil {
			t.Fatalf("generated key does not parse: %v", err)
		}
		if len(raw.Reveal()) != KeyLen {
			t.Fatalf("key length %d, want %d", len(raw.Reveal()), KeyLen)
		}
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	raw, _, _ := validKey(t)
	cred, err := ParseKey(raw.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	secretText := raw.Reveal()[len(KeyPrefix)+KeyIDLen+1:]
	pep, err := ParsePeppers([]byte("1:" + strings.Repeat("QUJD", 11)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, v := range []any{raw, cred, &cred, pep} {
		fmt.Fprintf(&buf, "%v %+v %#v %s\n", v, v, v, v)
		b, _ := json.Marshal(v)
		buf.Write(b)
	}
	st := struct {
		Key  RawKey
		Cred Credential
	}{raw, cred}
	fmt.Fprintf(&buf, "%v %+v %#v\n", st, st, st)
	b, _ := json.Marshal(st)
	buf.Write(b)
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("x", "key", raw, "cred", cred, "pepper", pep, "s", st)
	}
	out := buf.String()
	if strings.Contains(out, secretText) || strings.Contains(out, raw.Reveal()) {
		t.Fatalf("secret leaked:\n%s", out)
	}
	if strings.Contains(out, "QUJD") {
		t.Fatalf("pepper leaked:\n%s", out)
	}
	if !strings.Contains(out, redacted) {
		t.Fatal("no REDACTED marker at all")
	}
}
