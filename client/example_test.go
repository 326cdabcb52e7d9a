package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/client"
	"google.golang.org/grpc/codes"
)

// Connect, open a session, read two references.
func Example() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "127.0.0.1:5000", client.WithAPIKey("mxgw_..."))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	s, err := c.OpenSession(ctx, "example")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	res, err := s.Read(ctx, "TIC101.PV", "Tank1.Material")
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res {
		if err := r.Err(); err != nil {
			fmt.Println(r.ItemDefinition, "failed:", err)
			continue
		}
		fmt.Println(r.ItemDefinition, r.Value, r.Quality)
	}
}

// Connect to a gateway that runs with TLS (for example --tls=self-signed),
// pinning its certificate, with an API key. Dial fails on a TLS mismatch; a
// refused key fails the first call with ErrUnauthenticated.
func ExampleDial() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "gw.plant.local:5000",
		client.WithAPIKey(os.Getenv("MXGATEWAY_API_KEY")),
		client.WithCAFile("/var/lib/mxgateway/tls-cert.pem"))
	if err != nil {
		log.Fatal(err) // unreachable, TLS mismatch, unreadable CA file
	}
	defer c.Close()
	s, err := c.OpenSession(ctx, "example")
	switch {
	case errors.Is(err, client.ErrUnauthenticated):
		log.Fatal("the gateway refused the API key: ", err)
	case errors.Is(err, client.ErrPermissionDenied):
		log.Fatal("the API key lacks scope session:open: ", err)
	case err != nil:
		log.Fatal(err)
	}
	defer s.Close()
}

// Manage API keys remotely (the key used needs scope admin).
func ExampleAdmin() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "127.0.0.1:5000", client.WithAPIKey(os.Getenv("MXGATEWAY_API_KEY")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	adm := c.Admin()
	info, raw, err := adm.CreateAPIKey(ctx, client.NewAPIKey{
		Name:      "grafana",
		Scopes:    []string{"session:open", "session:close", "invoke:read", "events:read"},
		AllowRead: []string{"TIC*", "Tank1.*"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("store this key now, it is shown only once:", raw)
	// Rotate: a new id and secret; the old key stops working at once.
	rotated, raw2, err := adm.RotateAPIKey(ctx, info.GetId())
	if err != nil {
		log.Fatal(err)
	}
	_ = raw2
	if _, _, err := adm.RevokeAPIKey(ctx, rotated.GetId()); err != nil {
		log.Fatal(err)
	}
	events, err := adm.ListAuditEvents(ctx, &mxgatewayv1.ListAuditEventsRequest{Limit: 10})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range events {
		fmt.Println(e.GetAction(), e.GetTarget(), e.GetOutcome())
	}
}

// A bulk command is never refused as a whole for a reference the key may
// not use: the denied entry carries a typed error, the others run.
func ExampleBulkEntry_Err() {
	// As SubscribeBulk returns it for a key allowed to read only "Tank1.*".
	entry := client.BulkEntry{ItemDefinition: "TIC101.PV", Denial: &mxgatewayv1.EntryDenial{
		Reason: mxgatewayv1.ReasonReferenceForbidden, Message: `reference not allowed for reading by this API key: "TIC101.PV"`}}
	err := entry.Err()
	var ge *client.GatewayError
	fmt.Println(errors.Is(err, client.ErrPermissionDenied), errors.As(err, &ge), ge.Code, client.GatewayReason(err))
	// Output:
	// true true PermissionDenied REFERENCE_NOT_ALLOWED
}

// Subscribe and consume events; the iterator resumes by itself after a
// dropped connection and reports replay gaps.
func ExampleSession_Events() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, "127.0.0.1:5000")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	s, err := c.OpenSession(ctx, "watcher")
	if err != nil {
		log.Fatal(err)
	}
	entries, err := s.Subscribe(ctx, "TIC101.PV", "Tank1.Level")
	if err != nil {
		log.Fatal(err)
	}
	names := map[int32]string{}
	for _, e := range entries {
		if err := e.Err(); err != nil {
			log.Fatal(err)
		}
		names[e.ItemHandle] = e.ItemDefinition
	}
	for ev, err := range s.Events(ctx) {
		if err != nil {
			log.Fatal(err) // permanent: session gone, key refused, ...
		}
		if g := ev.Gap(); g != nil {
			fmt.Printf("lost %d events; re-read state\n", g.Missed())
			continue
		}
		if d := ev.DataChange(); d != nil {
			fmt.Println(names[d.ItemHandle], d.Value, d.Quality, d.Timestamp)
		}
	}
}

// Write a value and wait for MXAccess's OnWriteComplete.
func ExampleSession_WriteValue() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "127.0.0.1:5000")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	s, err := c.OpenSession(ctx, "writer")
	if err != nil {
		log.Fatal(err)
	}
	// 42 becomes 42.0: the value is converted to the attribute's own type
	// (MxDouble), learnt from its first OnDataChange.
	_, err = s.WriteValue(ctx, "TIC101.SP", 42)
	var me *client.MxAccessError
	switch {
	case errors.As(err, &me) && me.IsSecurityError():
		fmt.Println("refused by Galaxy security")
	case err != nil:
		log.Fatal(err)
	}
	// A secured write by an authenticated Galaxy user.
	uid, err := s.Authenticate(ctx, "operator", "operator1")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := s.WriteValue(ctx, "Pump1.StartCmd", true, client.Secured(uid, uid)); err != nil {
		log.Fatal(err)
	}
}

// The raw MXAccess surface: handles and events exactly as in MXAccess.
func ExampleMX() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "127.0.0.1:5000")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	s, err := c.OpenSession(ctx, "raw")
	if err != nil {
		log.Fatal(err)
	}
	mx := s.MX()
	hLMX, err := mx.Register(ctx, "my-app")
	if err != nil {
		log.Fatal(err)
	}
	hItem, err := mx.AddItem(ctx, hLMX, "TIC101.SP")
	if err != nil {
		log.Fatal(err)
	}
	if err := mx.Advise(ctx, hLMX, hItem); err != nil {
		log.Fatal(err)
	}
	// ... wait for the first OnDataChange on s.Events, then:
	if err := mx.Write(ctx, hLMX, hItem, client.MustValue(50.0), 0); err != nil {
		log.Fatal(err) // E_INVALIDARG etc. as *client.MxAccessError
	}
}

// Errors are typed: gateway failures carry the gRPC code and reason.
func ExampleGatewayError() {
	err := error(&client.GatewayError{Code: codes.NotFound, Reason: mxgatewayv1.ReasonSessionNotFound, Message: "session abc not found"})
	fmt.Println(errors.Is(err, client.ErrSessionNotFound), client.IsSessionNotFound(err))
	var ge *client.GatewayError
	if errors.As(err, &ge) {
		fmt.Println(ge.Code, ge.Reason)
	}
	// Output:
	// true true
	// NotFound SESSION_NOT_FOUND
}

// Go values convert to MXAccess values with explicit errors instead of loss.
func ExampleConvertValue() {
	v, _ := client.ConvertValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE, 42)
	fmt.Println(client.DataTypeName(v.DataType()), v)

	_, err := client.ConvertValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, int64(1)<<40)
	fmt.Println(err)

	arr, _ := client.NewValue([]string{"Cola 330ml", "Water 500ml"})
	fmt.Println(arr.IsArray(), arr.Len(), arr)

	t, _ := client.ParseValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME, "90")
	d, _ := t.AsDuration()
	fmt.Println(d)
	// Output:
	// MxDouble 42
	// client: cannot convert int64 1099511627776 to MxInteger: outside the int32 range
	// true 2 ["Cola 330ml", "Water 500ml"]
	// 1m30s
}

// Quality words print in words and classify on the masked low byte.
func ExampleQuality() {
	for _, q := range []client.Quality{192, 4, 68, 216} {
		fmt.Println(uint16(q), q, q.IsGood())
	}
	// Output:
	// 192 Good true
	// 4 Bad: configuration error false
	// 68 Uncertain: last usable value false
	// 216 Good: local override true
}
