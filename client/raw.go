package client

import (
	"context"
	"fmt"
	"math"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// MX is the raw MXAccess surface of a session: one method per MXAccess method
// and per bulk form, with MXAccess's handles, ordering rules and results
// unchanged. Get it from Session.MX. It is safe for concurrent use, but
// MXAccess itself runs one call at a time per session, in arrival order.
//
// A method returns *MxAccessError when MXAccess refused the call (its HRESULT
// and statuses), *GatewayError when the gateway could not run it. Bulk
// methods return one entry per input, in input order; one bad entry never
// fails the call (check each entry's Err).
type MX struct {
	s *Session
}

// Invoke runs one command and returns the reply as the gateway sent it. The
// error is a *GatewayError; an MXAccess refusal is a normal reply (check
// Reply.Status).
func (m *MX) Invoke(ctx context.Context, cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error) {
	return m.s.invoke(ctx, cmd)
}

// call runs cmd; a refusal is an *MxAccessError named after the command
// (its MXAccess method, from the command catalogue) and ref.
func (m *MX) call(ctx context.Context, ref string, cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error) {
	r, err := m.s.invoke(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if err := replyErr(catalog.Of(cmd).Title(), ref, r); err != nil {
		return r, err
	}
	return r, nil
}

// Register is ILMXProxyServer.Register: it returns the registration handle
// hLMX. Use a client name unique per registration.
func (m *MX) Register(ctx context.Context, clientName string) (int32, error) {
	r, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{
		Register: &mxgatewayv1.RegisterCommand{ClientName: clientName}}})
	if err != nil {
		return 0, err
	}
	h := r.GetRegister().GetServerHandle()
	if h <= 0 { // MXAccess: a handle <= 0 is a failure even with S_OK
		return 0, &MxAccessError{Method: "Register", Status: r.GetStatus(), HRESULT: r.GetHresult(),
			Statuses: r.GetStatuses(), Message: fmt.Sprintf("registration handle %d", h)}
	}
	return h, nil
}

// Unregister is ILMXProxyServer.Unregister; every item handle and user id of
// the registration dies.
func (m *MX) Unregister(ctx context.Context, hLMX int32) error {
	_, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Unregister{
		Unregister: &mxgatewayv1.UnregisterCommand{ServerHandle: hLMX}}})
	return err
}

// AddItem is ILMXProxyServer.AddItem: it returns the item handle. An unknown
// reference still gets a handle; the failure arrives with the first
// OnDataChange after Advise.
func (m *MX) AddItem(ctx context.Context, hLMX int32, ref string) (int32, error) {
	r, err := m.call(ctx, ref, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{
		AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: hLMX, ItemDefinition: ref}}})
	if err != nil {
		return 0, err
	}
	return r.GetItemHandle().GetItemHandle(), nil
}

// AddItem2 is ILMXProxyServer3.AddItem2, AddItem with the option/context
// argument passed through unchanged.
func (m *MX) AddItem2(ctx context.Context, hLMX int32, ref, itemContext string) (int32, error) {
	r, err := m.call(ctx, ref, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem2{
		AddItem2: &mxgatewayv1.AddItem2Command{ServerHandle: hLMX, ItemDefinition: ref, ItemContext: itemContext}}})
	if err != nil {
		return 0, err
	}
	return r.GetItemHandle().GetItemHandle(), nil
}

// RemoveItem is ILMXProxyServer.RemoveItem; the handle value may be reused
// afterwards, so drop anything keyed by it.
func (m *MX) RemoveItem(ctx context.Context, hLMX, hItem int32) error {
	_, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_RemoveItem{
		RemoveItem: &mxgatewayv1.RemoveItemCommand{ServerHandle: hLMX, ItemHandle: hItem}}})
	return err
}

// Advise is ILMXProxyServer.Advise (a user connection): one OnDataChange with
// the current value follows, then one per change.
func (m *MX) Advise(ctx context.Context, hLMX, hItem int32) error {
	_, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Advise{
		Advise: &mxgatewayv1.AdviseCommand{ServerHandle: hLMX, ItemHandle: hItem}}})
	return err
}

// AdviseSupervisory is ILMXProxyServer4.AdviseSupervisory (a supervisory
// connection: writes are attributed to the application, not a Galaxy user).
func (m *MX) AdviseSupervisory(ctx context.Context, hLMX, hItem int32) error {
	_, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AdviseSupervisory{
		AdviseSupervisory: &mxgatewayv1.AdviseSupervisoryCommand{ServerHandle: hLMX, ItemHandle: hItem}}})
	return err
}

// UnAdvise is ILMXProxyServer.UnAdvise. Events already queued for the item
// may still arrive; drop events for handles you no longer own.
func (m *MX) UnAdvise(ctx context.Context, hLMX, hItem int32) error {
	_, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnAdvise{
		UnAdvise: &mxgatewayv1.UnAdviseCommand{ServerHandle: hLMX, ItemHandle: hItem}}})
	return err
}

// Suspend is ILMXProxyServer4.Suspend: pause updates without removing the
// item.
func (m *MX) Suspend(ctx context.Context, hLMX, hItem int32) error {
	_, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Suspend{
		Suspend: &mxgatewayv1.SuspendCommand{ServerHandle: hLMX, ItemHandle: hItem}}})
	return err
}

// Activate is ILMXProxyServer4.Activate: resume a suspended item.
func (m *MX) Activate(ctx context.Context, hLMX, hItem int32) error {
	_, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Activate{
		Activate: &mxgatewayv1.ActivateCommand{ServerHandle: hLMX, ItemHandle: hItem}}})
	return err
}

// AddBufferedItem is ILMXProxyServer5.AddBufferedItem: an item whose updates
// arrive as OnBufferedDataChange once advised.
func (m *MX) AddBufferedItem(ctx context.Context, hLMX int32, ref string) (int32, error) {
	r, err := m.call(ctx, ref, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddBufferedItem{
		AddBufferedItem: &mxgatewayv1.AddBufferedItemCommand{ServerHandle: hLMX, ItemDefinition: ref}}})
	if err != nil {
		return 0, err
	}
	return r.GetItemHandle().GetItemHandle(), nil
}

// SetBufferedUpdateInterval is ILMXProxyServer5.SetBufferedUpdateInterval;
// the interval travels in whole milliseconds.
func (m *MX) SetBufferedUpdateInterval(ctx context.Context, hLMX int32, interval time.Duration) error {
	ms := interval.Milliseconds()
	if ms <= 0 || ms > math.MaxInt32 || interval%time.Millisecond != 0 {
		return fmt.Errorf("client: buffered update interval must be a positive whole number of milliseconds, got %v", interval)
	}
	_, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SetBufferedUpdateInterval{
		SetBufferedUpdateInterval: &mxgatewayv1.SetBufferedUpdateIntervalCommand{ServerHandle: hLMX, IntervalMs: int32(ms)}}})
	return err
}

// Write is ILMXProxyServer.Write; userID 0 writes without a Galaxy user. The
// item must be advised. Success means only "accepted": the outcome arrives as
// an OnWriteComplete event for hItem (FIFO per item).
func (m *MX) Write(ctx context.Context, hLMX, hItem int32, v Value, userID int32) error {
	_, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{
		Write: &mxgatewayv1.WriteCommand{ServerHandle: hLMX, ItemHandle: hItem, Value: v.Proto(), UserId: userID}}})
	return err
}

// Write2 is ILMXProxyServer4.Write2: Write with a timestamp for the value.
func (m *MX) Write2(ctx context.Context, hLMX, hItem int32, v Value, ts time.Time, userID int32) error {
	_, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write2{
		Write2: &mxgatewayv1.Write2Command{ServerHandle: hLMX, ItemHandle: hItem, Value: v.Proto(),
			Timestamp: timestamppb.New(ts.UTC()), UserId: userID}}})
	return err
}

// WriteSecured is ILMXProxyServer.WriteSecured for SecuredWrite and
// VerifiedWrite attributes; a single-user secured write passes the same user
// id twice. Refusals arrive in OnWriteComplete as MxCategorySecurityError.
func (m *MX) WriteSecured(ctx context.Context, hLMX, hItem, currentUserID, verifierUserID int32, v Value) error {
	_, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteSecured{
		WriteSecured: &mxgatewayv1.WriteSecuredCommand{ServerHandle: hLMX, ItemHandle: hItem,
			CurrentUserId: currentUserID, VerifierUserId: verifierUserID, Value: v.Proto()}}})
	return err
}

// WriteSecured2 is ILMXProxyServer4.WriteSecured2: WriteSecured with a
// timestamp.
func (m *MX) WriteSecured2(ctx context.Context, hLMX, hItem, currentUserID, verifierUserID int32, v Value, ts time.Time) error {
	_, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteSecured2{
		WriteSecured2: &mxgatewayv1.WriteSecured2Command{ServerHandle: hLMX, ItemHandle: hItem,
			CurrentUserId: currentUserID, VerifierUserId: verifierUserID, Value: v.Proto(), Timestamp: timestamppb.New(ts.UTC())}}})
	return err
}

// AuthenticateUser is ILMXProxyServer.AuthenticateUser: it returns the user
// id, valid only within this registration. As in MXAccess, a zero id with
// success means the authentication failed (Galaxy security mode None); this
// raw method returns it unchanged. The password is never logged.
func (m *MX) AuthenticateUser(ctx context.Context, hLMX int32, user, password string) (int32, error) {
	r, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AuthenticateUser{
		AuthenticateUser: &mxgatewayv1.AuthenticateUserCommand{ServerHandle: hLMX, UserName: user, Password: password}}})
	if err != nil {
		return 0, err
	}
	return r.GetUserId().GetUserId(), nil
}

// ArchestrAUserToId is ILMXProxyServer2.ArchestrAUserToId: it maps an
// ArchestrA user identity to a write user id.
func (m *MX) ArchestrAUserToId(ctx context.Context, hLMX int32, identity string) (int32, error) {
	r, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ArchestraUserToId{
		ArchestraUserToId: &mxgatewayv1.ArchestrAUserToIdCommand{ServerHandle: hLMX, UserIdentity: identity}}})
	if err != nil {
		return 0, err
	}
	return r.GetUserId().GetUserId(), nil
}

// BulkEntry is the outcome of one entry of a bulk command.
type BulkEntry struct {
	// ItemDefinition is the entry's reference, when the input had one.
	ItemDefinition string
	// ItemHandle is the entry's item handle (new for AddItemBulk and
	// SubscribeBulk).
	ItemHandle int32
	// Status is OK or the failure class.
	Status mxgatewayv1.GatewayStatusCode
	// HRESULT is the HRESULT of the first failing call, or 0.
	HRESULT int32
	// FailedMethod is the MXAccess method that failed, for example "Advise".
	FailedMethod string
	// Denial is set when the gateway refused the entry before MXAccess saw it.
	Denial *mxgatewayv1.EntryDenial
	// ParityWarnings lists tolerated deviations from MXAccess ordering rules.
	ParityWarnings []string
	// Calls lists, for a failed entry, every MXAccess call made for it with
	// its outcome (UnsubscribeBulk goes on to RemoveItem after a refused
	// UnAdvise); nil for a successful or denied entry.
	Calls []*mxgatewayv1.BulkCall

	err error // set by the conveniences for entries they refused locally
}

// Err returns nil for a successful entry, a *GatewayError for a denied one
// (PermissionDenied with reason REFERENCE_NOT_ALLOWED for a key's
// constraints, InvalidArgument with INVALID_REQUEST for an entry beyond
// the gateway's bounds), otherwise an *MxAccessError.
func (e BulkEntry) Err() error {
	if e.err != nil {
		return e.err
	}
	if e.Denial != nil {
		return denialError(e.Denial)
	}
	if e.Status == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK && e.HRESULT >= 0 {
		return nil
	}
	method := e.FailedMethod
	if method == "" {
		method = "bulk entry"
	}
	return &MxAccessError{Method: method, Reference: e.ItemDefinition, Status: e.Status, HRESULT: e.HRESULT}
}

// denialError is the *GatewayError of an entry the gateway refused: the
// code the same refusal of a single command would have had.
func denialError(d *mxgatewayv1.EntryDenial) error {
	code := codes.PermissionDenied
	if d.GetReason() == mxgatewayv1.ReasonInvalidRequest {
		code = codes.InvalidArgument
	}
	return &GatewayError{Code: code, Reason: d.GetReason(), Message: d.GetMessage()}
}

func bulkEntries(r *mxgatewayv1.Reply) []BulkEntry {
	in := r.GetBulk().GetEntries()
	out := make([]BulkEntry, len(in))
	for i, e := range in {
		out[i] = BulkEntry{
			ItemDefinition: e.GetItemDefinition(), ItemHandle: e.GetItemHandle(), Status: e.GetStatus(),
			HRESULT: e.GetHresult(), FailedMethod: e.GetFailedMethod(), Denial: e.GetDenial(),
			ParityWarnings: e.GetParityWarnings(), Calls: e.GetCalls(),
		}
	}
	return out
}

func (m *MX) bulk(ctx context.Context, cmd *mxgatewayv1.Command) ([]BulkEntry, error) {
	k := catalog.Of(cmd)
	r, err := m.call(ctx, "", cmd)
	if err != nil {
		return nil, err
	}
	out := bulkEntries(r)
	if n := k.Inputs(cmd); len(out) != n {
		return out, fmt.Errorf("client: %s: gateway returned %d entries for %d inputs", k.Title(), len(out), n)
	}
	return out, nil
}

// AddItemBulk runs AddItem for each reference, in order.
func (m *MX) AddItemBulk(ctx context.Context, hLMX int32, refs []string) ([]BulkEntry, error) {
	return m.bulk(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItemBulk{
		AddItemBulk: &mxgatewayv1.AddItemBulkCommand{ServerHandle: hLMX, ItemDefinitions: refs}}})
}

// AdviseBulk runs Advise (or AdviseSupervisory) for each handle, in order.
func (m *MX) AdviseBulk(ctx context.Context, hLMX int32, handles []int32, supervisory bool) ([]BulkEntry, error) {
	return m.bulk(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AdviseBulk{
		AdviseBulk: &mxgatewayv1.AdviseBulkCommand{ServerHandle: hLMX, ItemHandles: handles, Supervisory: supervisory}}})
}

// SubscribeBulk runs AddItem then Advise (or AdviseSupervisory) for each
// reference, in order.
func (m *MX) SubscribeBulk(ctx context.Context, hLMX int32, refs []string, supervisory bool) ([]BulkEntry, error) {
	return m.bulk(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{
		SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{ServerHandle: hLMX, ItemDefinitions: refs, Supervisory: supervisory}}})
}

// UnsubscribeBulk runs UnAdvise then RemoveItem for each handle, in order.
func (m *MX) UnsubscribeBulk(ctx context.Context, hLMX int32, handles []int32) ([]BulkEntry, error) {
	return m.bulk(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnsubscribeBulk{
		UnsubscribeBulk: &mxgatewayv1.UnsubscribeBulkCommand{ServerHandle: hLMX, ItemHandles: handles}}})
}

// RemoveItemBulk runs RemoveItem for each handle, in order.
func (m *MX) RemoveItemBulk(ctx context.Context, hLMX int32, handles []int32) ([]BulkEntry, error) {
	return m.bulk(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_RemoveItemBulk{
		RemoveItemBulk: &mxgatewayv1.RemoveItemBulkCommand{ServerHandle: hLMX, ItemHandles: handles}}})
}

// UnAdviseBulk runs UnAdvise for each handle, in order.
func (m *MX) UnAdviseBulk(ctx context.Context, hLMX int32, handles []int32) ([]BulkEntry, error) {
	return m.bulk(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnAdviseBulk{
		UnAdviseBulk: &mxgatewayv1.UnAdviseBulkCommand{ServerHandle: hLMX, ItemHandles: handles}}})
}

// WriteEntry is one entry of WriteBulk.
type WriteEntry struct {
	// ItemHandle is the advised item to write.
	ItemHandle int32
	// Value is the value to write.
	Value Value
	// UserID is the Galaxy user id; 0 writes without a user.
	UserID int32
}

// Write2Entry is one entry of Write2Bulk.
type Write2Entry struct {
	// ItemHandle is the advised item to write.
	ItemHandle int32
	// Value is the value to write.
	Value Value
	// Timestamp is applied to the value.
	Timestamp time.Time
	// UserID is the Galaxy user id; 0 writes without a user.
	UserID int32
}

// WriteSecuredEntry is one entry of WriteSecuredBulk.
type WriteSecuredEntry struct {
	// ItemHandle is the advised item to write.
	ItemHandle int32
	// CurrentUserID is the writer's user id.
	CurrentUserID int32
	// VerifierUserID is the verifier's user id (the writer's for a single-user
	// secured write).
	VerifierUserID int32
	// Value is the value to write.
	Value Value
}

// WriteSecured2Entry is one entry of WriteSecured2Bulk.
type WriteSecured2Entry struct {
	// ItemHandle is the advised item to write.
	ItemHandle int32
	// CurrentUserID is the writer's user id.
	CurrentUserID int32
	// VerifierUserID is the verifier's user id.
	VerifierUserID int32
	// Value is the value to write.
	Value Value
	// Timestamp is applied to the value.
	Timestamp time.Time
}

// WriteBulk runs Write for each entry, in order. Each accepted entry is
// followed by one OnWriteComplete for its item.
func (m *MX) WriteBulk(ctx context.Context, hLMX int32, entries []WriteEntry) ([]BulkEntry, error) {
	in := make([]*mxgatewayv1.WriteCommand, len(entries))
	for i, e := range entries {
		in[i] = &mxgatewayv1.WriteCommand{ServerHandle: hLMX, ItemHandle: e.ItemHandle, Value: e.Value.Proto(), UserId: e.UserID}
	}
	return m.bulk(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteBulk{
		WriteBulk: &mxgatewayv1.WriteBulkCommand{ServerHandle: hLMX, Entries: in}}})
}

// Write2Bulk runs Write2 for each entry, in order.
func (m *MX) Write2Bulk(ctx context.Context, hLMX int32, entries []Write2Entry) ([]BulkEntry, error) {
	in := make([]*mxgatewayv1.Write2Command, len(entries))
	for i, e := range entries {
		in[i] = &mxgatewayv1.Write2Command{ServerHandle: hLMX, ItemHandle: e.ItemHandle, Value: e.Value.Proto(),
			Timestamp: timestamppb.New(e.Timestamp.UTC()), UserId: e.UserID}
	}
	return m.bulk(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write2Bulk{
		Write2Bulk: &mxgatewayv1.Write2BulkCommand{ServerHandle: hLMX, Entries: in}}})
}

// WriteSecuredBulk runs WriteSecured for each entry, in order.
func (m *MX) WriteSecuredBulk(ctx context.Context, hLMX int32, entries []WriteSecuredEntry) ([]BulkEntry, error) {
	in := make([]*mxgatewayv1.WriteSecuredCommand, len(entries))
	for i, e := range entries {
		in[i] = &mxgatewayv1.WriteSecuredCommand{ServerHandle: hLMX, ItemHandle: e.ItemHandle,
			CurrentUserId: e.CurrentUserID, VerifierUserId: e.VerifierUserID, Value: e.Value.Proto()}
	}
	return m.bulk(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteSecuredBulk{
		WriteSecuredBulk: &mxgatewayv1.WriteSecuredBulkCommand{ServerHandle: hLMX, Entries: in}}})
}

// WriteSecured2Bulk runs WriteSecured2 for each entry, in order.
func (m *MX) WriteSecured2Bulk(ctx context.Context, hLMX int32, entries []WriteSecured2Entry) ([]BulkEntry, error) {
	in := make([]*mxgatewayv1.WriteSecured2Command, len(entries))
	for i, e := range entries {
		in[i] = &mxgatewayv1.WriteSecured2Command{ServerHandle: hLMX, ItemHandle: e.ItemHandle,
			CurrentUserId: e.CurrentUserID, VerifierUserId: e.VerifierUserID, Value: e.Value.Proto(),
			Timestamp: timestamppb.New(e.Timestamp.UTC())}
	}
	return m.bulk(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteSecured2Bulk{
		WriteSecured2Bulk: &mxgatewayv1.WriteSecured2BulkCommand{ServerHandle: hLMX, Entries: in}}})
}

// ReadResult is the first (or cached) value of one reference.
type ReadResult struct {
	// ItemDefinition is the reference as given.
	ItemDefinition string
	// WasCached is true when the value came from the session's own advised
	// item.
	WasCached bool
	// TimedOut is true when no first value arrived in time (a failure).
	TimedOut bool
	// HRESULT is the HRESULT of the first failing call, or 0.
	HRESULT int32
	// FailedMethod is the MXAccess method that failed, or "".
	FailedMethod string
	// Value is the value (null with some failures).
	Value Value
	// Quality is the OPC DA quality word.
	Quality Quality
	// Timestamp is the value's time, UTC.
	Timestamp time.Time
	// Statuses is the data change's MXSTATUS_PROXY array.
	Statuses Statuses
	// Denial is set when the gateway refused the entry.
	Denial *mxgatewayv1.EntryDenial
}

// Err returns nil when the value arrived with successful statuses (its
// quality may still be bad or uncertain: check Quality), a *GatewayError for
// a denied entry, otherwise an *MxAccessError (a failed call, a failure
// status such as MxCategoryConfigurationError for an unknown reference, or a
// timeout).
func (r ReadResult) Err() error {
	switch {
	case r.Denial != nil:
		return denialError(r.Denial)
	case r.HRESULT < 0 || r.FailedMethod != "":
		return &MxAccessError{Method: nonEmpty(r.FailedMethod, "Read"), Reference: r.ItemDefinition, HRESULT: r.HRESULT,
			Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE, Statuses: r.Statuses}
	case r.TimedOut:
		return &MxAccessError{Method: "Read", Reference: r.ItemDefinition, Statuses: r.Statuses, Message: timeoutMessage}
	case !r.Statuses.OK():
		return &MxAccessError{Method: "OnDataChange", Reference: r.ItemDefinition, Statuses: r.Statuses}
	}
	return nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ReadBulk reads each reference: the cached value when the session has it
// added and advised with a value received, otherwise through a transient
// item (AddItem, Advise, first OnDataChange, UnAdvise, RemoveItem), leaving
// the session as it was. timeout bounds each first value; 0 uses the
// gateway's default (sized for first-bind latency).
func (m *MX) ReadBulk(ctx context.Context, hLMX int32, refs []string, timeout time.Duration) ([]ReadResult, error) {
	if timeout < 0 || timeout.Milliseconds() > math.MaxUint32 {
		return nil, fmt.Errorf("client: read timeout out of range: %v", timeout)
	}
	r, err := m.call(ctx, "", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{
		ReadBulk: &mxgatewayv1.ReadBulkCommand{ServerHandle: hLMX, ItemDefinitions: refs, TimeoutMs: uint32(timeout.Milliseconds())}}})
	if err != nil {
		return nil, err
	}
	in := r.GetReadBulk().GetEntries()
	out := make([]ReadResult, len(in))
	for i, e := range in {
		out[i] = ReadResult{
			ItemDefinition: e.GetItemDefinition(), WasCached: e.GetWasCached(), TimedOut: e.GetTimedOut(),
			HRESULT: e.GetHresult(), FailedMethod: e.GetFailedMethod(), Value: ValueFromProto(e.GetValue()),
			Quality: QualityFromProto(e.GetQuality()), Statuses: e.GetStatuses(), Denial: e.GetDenial(),
		}
		if e.GetTimestamp() != nil {
			out[i].Timestamp = e.GetTimestamp().AsTime().UTC()
		}
	}
	if len(out) != len(refs) {
		return out, fmt.Errorf("client: ReadBulk: gateway returned %d entries for %d references", len(out), len(refs))
	}
	return out, nil
}
