package session

import (
	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// itemRefs maps (server handle, item handle) to the reference the item was
// added with. Writes name items by handle only, so reference constraints on
// writes need it. MXAccess reuses handles: every add overwrites, and every
// removal forgets the handle whatever MXAccess answered (a handle the
// gateway does not know is denied, so forgetting fails closed).
type itemRefs map[itemKey]string

// track updates the map from a command the worker answered.
func (r itemRefs) track(cmd *mxgatewayv1.Command, reply *mxgatewayv1.Reply) {
	if reply == nil {
		return
	}
	ok := reply.GetStatus() == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
	added := func(server int32, ref string) {
		if h := reply.GetItemHandle().GetItemHandle(); ok && h > 0 {
			r[itemKey{server, h}] = ref
		}
	}
	// Bulk entries come back one per input, in input order.
	addedBulk := func(server int32, refs []string) {
		entries := reply.GetBulk().GetEntries()
		if len(entries) != len(refs) {
			return
		}
		for i, e := range entries {
			// A handle means the add succeeded, even when a later step of
			// the entry (SubscribeBulk's Advise) failed.
			if e.GetItemHandle() > 0 && e.GetDenial() == nil {
				r[itemKey{server, e.GetItemHandle()}] = refs[i]
			}
		}
	}
	removed := func(server int32, handles []int32) {
		for _, h := range handles {
			delete(r, itemKey{server, h})
		}
	}
	switch k := cmd.GetKind().(type) {
	case *mxgatewayv1.Command_AddItem:
		added(k.AddItem.GetServerHandle(), k.AddItem.GetItemDefinition())
	case *mxgatewayv1.Command_AddItem2:
		added(k.AddItem2.GetServerHandle(), k.AddItem2.GetItemDefinition())
	case *mxgatewayv1.Command_AddBufferedItem:
		added(k.AddBufferedItem.GetServerHandle(), k.AddBufferedItem.GetItemDefinition())
	case *mxgatewayv1.Command_AddItemBulk:
		addedBulk(k.AddItemBulk.GetServerHandle(), k.AddItemBulk.GetItemDefinitions())
	case *mxgatewayv1.Command_SubscribeBulk:
		addedBulk(k.SubscribeBulk.GetServerHandle(), k.SubscribeBulk.GetItemDefinitions())
	case *mxgatewayv1.Command_RemoveItem:
		removed(k.RemoveItem.GetServerHandle(), []int32{k.RemoveItem.GetItemHandle()})
	case *mxgatewayv1.Command_RemoveItemBulk:
		removed(k.RemoveItemBulk.GetServerHandle(), k.RemoveItemBulk.GetItemHandles())
	case *mxgatewayv1.Command_UnsubscribeBulk:
		removed(k.UnsubscribeBulk.GetServerHandle(), k.UnsubscribeBulk.GetItemHandles())
	case *mxgatewayv1.Command_Unregister:
		server := k.Unregister.GetServerHandle()
		for key := range r {
			if key.server == server {
				delete(r, key)
			}
		}
	}
}
