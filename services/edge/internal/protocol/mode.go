package protocol

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

// Mode is a connection's wire format, chosen at the handshake by WebSocket
// subprotocol. Both modes carry the same messages with the same rules;
// only the encoding differs.
type Mode uint8

// Modes.
const (
	// JSON: text frames of '\n'-separated JSON messages (subprotocol
	// eventedge.v1.json, also when the client asks for none).
	JSON Mode = iota
	// Protobuf: binary frames of length-delimited ClientMessage and
	// ServerMessage protobufs (subprotocol eventedge.v1.protobuf).
	Protobuf
)

// Subprotocol names.
const (
	SubprotocolJSON     = "eventedge.v1.json"
	SubprotocolProtobuf = "eventedge.v1.protobuf"
)

// Subprotocols is every subprotocol a node accepts, in its order of
// preference when a client offers both.
var Subprotocols = []string{SubprotocolJSON, SubprotocolProtobuf}

// String returns the mode's short name ("json", "protobuf") for logs,
// metrics and the admin API.
func (m Mode) String() string {
	if m == Protobuf {
		return "protobuf"
	}
	return "json"
}

// Subprotocol returns the mode's subprotocol name.
func (m Mode) Subprotocol() string {
	if m == Protobuf {
		return SubprotocolProtobuf
	}
	return SubprotocolJSON
}

// MessageType is the WebSocket frame type of the mode's messages.
func (m Mode) MessageType() websocket.MessageType {
	if m == Protobuf {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

// maxOffered bounds the subprotocols one handshake may offer.
const maxOffered = 16

// Negotiate picks the mode of a handshake from the subprotocols the client
// offers (Sec-WebSocket-Protocol, in the client's order of preference): the
// first one the node speaks. A client that offers none gets JSON and no
// subprotocol in the answer (answer is ""); otherwise answer is the chosen
// subprotocol, which the server must echo. A client that offers only
// subprotocols the node does not speak gets an error that says which ones
// it does: the handshake is refused (400).
func Negotiate(h http.Header) (mode Mode, answer string, err error) {
	var offered []string
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				offered = append(offered, p)
			}
		}
	}
	if len(offered) == 0 {
		return JSON, "", nil
	}
	for i, p := range offered {
		if i == maxOffered {
			break
		}
		switch p {
		case SubprotocolJSON:
			return JSON, p, nil
		case SubprotocolProtobuf:
			return Protobuf, p, nil
		}
	}
	shown := offered
	if len(shown) > 3 {
		shown = shown[:3]
	}
	for i, p := range shown {
		shown[i] = fmt.Sprintf("%q", clip(p))
	}
	more := ""
	if len(offered) > len(shown) {
		more = fmt.Sprintf(" (and %d more)", len(offered)-len(shown))
	}
	return JSON, "", fmt.Errorf("unsupported WebSocket subprotocol %s%s: this node speaks %s (the default) and %s",
		strings.Join(shown, ", "), more, SubprotocolJSON, SubprotocolProtobuf)
}
