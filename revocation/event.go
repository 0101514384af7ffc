package revocation

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the kind of a revocation event, the last token of its subject.
type Kind string

// The kinds of revocation events of the external contract.
const (
	KindJTI    Kind = "jti"    // one token by its jti claim
	KindToken  Kind = "token"  // one token by the SHA-256 of its string
	KindSub    Kind = "sub"    // every token of a subject issued before not_before
	KindClient Kind = "client" // every token of a client issued before not_before
)

// KindUnknown labels malformed events whose subject names no known kind in
// [Stats.Malformed]. It is never a valid event kind.
const KindUnknown Kind = "unknown"

// kinds lists the valid kinds in a fixed order.
var kinds = [...]Kind{KindJTI, KindToken, KindSub, KindClient}

// Valid reports whether k is one of the four event kinds.
func (k Kind) Valid() bool {
	return k.index() >= 0
}

func (k Kind) index() int {
	switch k {
	case KindJTI:
		return 0
	case KindToken:
		return 1
	case KindSub:
		return 2
	case KindClient:
		return 3
	}
	return -1
}

// Limits of event bodies and times.
const (
	// MaxEventSize is the largest event body that is accepted, in bytes.
	// The stream created by [Start] rejects larger messages as well.
	MaxEventSize = 64 << 10

	// maxUnix bounds exp and not_before (9999-12-31T23:59:59Z) so that
	// adding durations never overflows.
	maxUnix = 253402300799
)

// ErrMalformed is wrapped by every error of [ParseEvent] and
// [Event.Validate]. Its text, and that of the errors wrapping it, never holds
// the event body or any of its values.
var ErrMalformed = errors.New("revocation: malformed event")

// Event is one revocation event. Which fields matter depends on Kind:
//
//	KindJTI     Jti (required), Iss (empty: any issuer), Exp
//	KindToken   TokenSHA256 (required), Exp
//	KindSub     Sub (required), Iss (empty: any issuer), NotBefore (required)
//	KindClient  ClientID (required), Iss (empty: any issuer), NotBefore (required)
//
// Exp and NotBefore are unix seconds. Exp 0 means absent: the entry is then
// kept for the maximum token lifetime from the time it is applied.
type Event struct {
	Kind        Kind
	Iss         string
	Jti         string
	Sub         string
	ClientID    string
	TokenSHA256 [32]byte
	Exp         int64
	NotBefore   int64
}

func malformed(kind Kind, reason string) error {
	if kind == "" {
		return fmt.Errorf("%w: %s", ErrMalformed, reason)
	}
	return fmt.Errorf("%w: %s event: %s", ErrMalformed, kind, reason)
}

// Validate reports whether e is a well-formed event of its kind, with an
// error wrapping [ErrMalformed] when it is not.
func (e Event) Validate() error {
	switch e.Kind {
	case KindJTI:
		if e.Jti == "" {
			return malformed(e.Kind, "missing jti")
		}
	case KindToken:
		// Every digest is possible, also all zeros (which matches nothing
		// because [Token] uses all zeros for "no twin").
	case KindSub:
		if e.Sub == "" {
			return malformed(e.Kind, "missing sub")
		}
	case KindClient:
		if e.ClientID == "" {
			return malformed(e.Kind, "missing client_id")
		}
	default:
		return malformed("", "unknown kind")
	}
	switch e.Kind {
	case KindJTI, KindToken:
		if e.Exp < 0 || e.Exp > maxUnix {
			return malformed(e.Kind, "exp out of range")
		}
	case KindSub, KindClient:
		if e.NotBefore <= 0 || e.NotBefore > maxUnix {
			return malformed(e.Kind, "not_before missing or out of range")
		}
	}
	return nil
}

// Subject returns the subject e is published on: base, a dot and the kind.
// An empty base means [DefaultSubject].
func (e Event) Subject(base string) string {
	if base == "" {
		base = DefaultSubject
	}
	return base + "." + string(e.Kind)
}

// Wire shapes, field order as in the contract.
type (
	jtiBody struct {
		Iss string `json:"iss,omitempty"`
		Jti string `json:"jti"`
		Exp int64  `json:"exp,omitempty"`
	}
	tokenBody struct {
		TokenSHA256 string `json:"token_sha256"`
		Exp         int64  `json:"exp,omitempty"`
	}
	subBody struct {
		Iss       string `json:"iss,omitempty"`
		Sub       string `json:"sub"`
		NotBefore int64  `json:"not_before"`
	}
	clientBody struct {
		Iss       string `json:"iss,omitempty"`
		ClientID  string `json:"client_id"`
		NotBefore int64  `json:"not_before"`
	}
)

// MarshalJSON encodes e as the contract's body for its kind: only the fields
// of that kind, iss omitted when empty, exp omitted when 0. It fails for an
// event that does not pass [Event.Validate].
func (e Event) MarshalJSON() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	switch e.Kind {
	case KindJTI:
		return json.Marshal(jtiBody{Iss: e.Iss, Jti: e.Jti, Exp: e.Exp})
	case KindToken:
		return json.Marshal(tokenBody{TokenSHA256: hex.EncodeToString(e.TokenSHA256[:]), Exp: e.Exp})
	case KindSub:
		return json.Marshal(subBody{Iss: e.Iss, Sub: e.Sub, NotBefore: e.NotBefore})
	default: // KindClient; Validate rejected everything else
		return json.Marshal(clientBody{Iss: e.Iss, ClientID: e.ClientID, NotBefore: e.NotBefore})
	}
}

// kindOf returns the kind named by subject, which must be base followed by
// a dot and exactly one more token. An empty base means [DefaultSubject].
// It returns [KindUnknown] and false for any other subject.
func kindOf(subject, base string) (Kind, bool) {
	if base == "" {
		base = DefaultSubject
	}
	rest, ok := strings.CutPrefix(subject, base)
	if !ok {
		return KindUnknown, false
	}
	rest, ok = strings.CutPrefix(rest, ".")
	if !ok {
		return KindUnknown, false
	}
	k := Kind(rest)
	if !k.Valid() {
		return KindUnknown, false
	}
	return k, true
}

// ParseEvent parses one event received on subject, whose last token after
// base names the kind ("introspect.revocations.jti" with base
// "introspect.revocations"; an empty base means [DefaultSubject]).
//
// It is strict: the body must be valid UTF-8 JSON holding one object; the
// fields of the kind must have the right JSON types (strings, integers; null
// is not accepted); a field may not appear twice; token_sha256 is 64 hex
// digits of either case; jti, sub and client_id may not be empty; exp is
// optional (0 means absent) and not_before required for sub and client.
// Members that the kind does not use are ignored.
//
// Errors wrap [ErrMalformed] and never contain the body or its values. On
// error the returned Event has Kind set when the subject named a valid kind,
// so that callers can count failures by kind.
func ParseEvent(subject string, body []byte, base string) (Event, error) {
	kind, ok := kindOf(subject, base)
	if !ok {
		return Event{Kind: KindUnknown}, malformed("", "subject names no event kind")
	}
	e := Event{Kind: kind}
	if err := parseBody(&e, body); err != nil {
		return Event{Kind: kind}, err
	}
	if err := e.Validate(); err != nil {
		return Event{Kind: kind}, err
	}
	return e, nil
}

// Field bits, for duplicate detection.
const (
	fIss = 1 << iota
	fJti
	fSub
	fClientID
	fTokenSHA256
	fExp
	fNotBefore
)

func parseBody(e *Event, body []byte) error {
	k := e.Kind
	if len(body) > MaxEventSize {
		return malformed(k, "body too large")
	}
	if !utf8.Valid(body) {
		return malformed(k, "body is not valid UTF-8")
	}
	if !json.Valid(body) {
		return malformed(k, "body is not valid JSON")
	}
	// From here on the body is known to be valid JSON, which keeps the
	// scanner below small: it only has to find where values end.
	s := scanner{b: body}
	s.ws()
	if s.peek() != '{' {
		return malformed(k, "body is not a JSON object")
	}
	s.i++
	var seen int
	for {
		s.ws()
		if s.peek() == '}' {
			if k == KindToken && seen&fTokenSHA256 == 0 {
				// Validate cannot tell an absent digest from all zeros.
				return malformed(k, "missing token_sha256")
			}
			return nil
		}
		if s.peek() == ',' {
			s.i++
			s.ws()
		}
		key, err := s.str()
		if err != nil {
			return malformed(k, "bad member name")
		}
		s.ws()
		s.i++ // ':'
		s.ws()
		start := s.i
		s.skipValue()
		raw := body[start:s.i]

		var bit int
		switch key {
		case "iss":
			bit = fIss
		case "jti":
			bit = fJti
		case "sub":
			bit = fSub
		case "client_id":
			bit = fClientID
		case "token_sha256":
			bit = fTokenSHA256
		case "exp":
			bit = fExp
		case "not_before":
			bit = fNotBefore
		default:
			continue // unknown members are ignored
		}
		if seen&bit != 0 {
			return malformed(k, "duplicate member "+key)
		}
		seen |= bit
		if !usesField(k, bit) {
			continue
		}
		switch bit {
		case fIss, fJti, fSub, fClientID:
			v, err := jsonString(raw)
			if err != nil {
				return malformed(k, key+" is not a string")
			}
			switch bit {
			case fIss:
				e.Iss = v
			case fJti:
				e.Jti = v
			case fSub:
				e.Sub = v
			case fClientID:
				e.ClientID = v
			}
		case fTokenSHA256:
			v, err := jsonString(raw)
			if err != nil {
				return malformed(k, key+" is not a string")
			}
			if len(v) != 64 {
				return malformed(k, key+" is not 64 hex digits")
			}
			if _, err := hex.Decode(e.TokenSHA256[:], []byte(v)); err != nil {
				return malformed(k, key+" is not 64 hex digits")
			}
		case fExp, fNotBefore:
			n, err := strconv.ParseInt(string(raw), 10, 64)
			if err != nil {
				return malformed(k, key+" is not an integer")
			}
			if bit == fExp {
				e.Exp = n
			} else {
				e.NotBefore = n
			}
		}
	}
}

// usesField reports whether events of kind k carry the field bit.
func usesField(k Kind, bit int) bool {
	switch k {
	case KindJTI:
		return bit&(fIss|fJti|fExp) != 0
	case KindToken:
		return bit&(fTokenSHA256|fExp) != 0
	case KindSub:
		return bit&(fIss|fSub|fNotBefore) != 0
	case KindClient:
		return bit&(fIss|fClientID|fNotBefore) != 0
	}
	return false
}

// jsonString decodes raw, one complete JSON value, as a string.
func jsonString(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", errors.New("not a string")
	}
	inner := raw[1 : len(raw)-1]
	if !hasEscapeOrControl(inner) {
		return string(inner), nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	return v, nil
}

func hasEscapeOrControl(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c < 0x20 {
			return true
		}
	}
	return false
}

// scanner walks a body that json.Valid accepted.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str reads one JSON string and returns it decoded.
func (s *scanner) str() (string, error) {
	start := s.i
	s.skipString()
	return jsonString(s.b[start:s.i])
}

// skipString moves past the string that starts at s.i.
func (s *scanner) skipString() {
	s.i++ // opening quote
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
		case '"':
			s.i++
			return
		default:
			s.i++
		}
	}
}

// skipValue moves past the value that starts at s.i.
func (s *scanner) skipValue() {
	switch s.peek() {
	case '"':
		s.skipString()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return
				}
			}
			s.i++
		}
	default: // number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
}
