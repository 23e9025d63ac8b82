/**
 * Links on the network side (docs/agent.md §2.1): publishing a new
 * queue's link as a short link (its full form kept encrypted by the
 * relay), fetching the full form of a short link through the profile's
 * routing, and refusing our own links.
 */
import { randomBytes } from 'node:crypto';
import { ConnectionError, RelayError } from '../client/errors.js';
import type { RecipientQueue } from '../client/queues.js';
import { parseAddress } from '../protocol/address.js';
import { AgentError } from './agent-api.js';
import type { AgentStore } from './agent-store.js';
import { linkIdOf, newLinkKey, openLinkData, sealLinkData } from './link-data.js';
import { decodeAnyLink, decodeLinkPayload, encodeLink, encodeLinkPayload, encodeShortLink, type ConnectionLink } from './links.js';
import type { RelaySessions } from './relay-sessions.js';
import type { Router } from './routing.js';

export class ShortLinks {
  constructor(
    private readonly store: AgentStore,
    private readonly sessions: RelaySessions,
    private readonly router: Router,
  ) {}

  /**
   * The link to share for a new queue: a short one, whose full form the
   * relay keeps encrypted (link-data.ts), or the full one if the relay is
   * too old to keep link data.
   */
  async publish(relay: string, queue: RecipientQueue, owner: string, full: ConnectionLink): Promise<{ link: string; linkId: Uint8Array | null }> {
    const linkKey = newLinkKey();
    const linkId = linkIdOf(linkKey);
    const client = await this.sessions.owned(relay, owner);
    try {
      await client.setLinkData(queue, linkId, sealLinkData(linkKey, encodeLinkPayload(full)));
    } catch (e) {
      if (e instanceof ConnectionError && e.reason === 'VERSION') return { link: encodeLink(full), linkId: null };
      throw new AgentError('RELAY_UNREACHABLE', `could not store the link on ${relay}: ${(e as Error).message}`, { cause: e });
    }
    return { link: encodeShortLink({ kind: full.kind, relay, linkKey }), linkId };
  }

  /** Refuses one of our own links (OWN_LINK): a short one by its link ID, before anything is fetched; a full one by its queue. */
  refuseOwn(link: { relay: string; linkId?: Uint8Array; senderId?: Uint8Array }): void {
    const own = this.store
      .rcvQueues()
      .find(
        (q) =>
          q.relay === link.relay &&
          ((link.linkId !== undefined && q.link_id !== null && Buffer.from(q.link_id).equals(link.linkId)) ||
            (link.senderId !== undefined && Buffer.from(q.sender_id).equals(link.senderId))),
      );
    if (own) {
      throw new AgentError(
        'OWN_LINK',
        own.address_id !== null ? 'this is your own contact address: share it with others, they use it to reach you' : 'this is your own invitation: give it to the person you want to talk to',
      );
    }
  }

  /** The full form of a link: a short one is fetched from its relay (routed like a message, so the relay does not see our address). */
  async resolve(text: string): Promise<ConnectionLink> {
    const link = decodeAnyLink(text);
    if (link.form === 'full') {
      this.refuseOwn(link);
      return link;
    }
    const linkId = linkIdOf(link.linkKey);
    this.refuseOwn({ relay: link.relay, linkId });
    let data: Uint8Array;
    try {
      data = await this.router.routed(
        link.relay,
        'LGET',
        `fetch:${randomBytes(8).toString('hex')}`, // a session of its own: fetching a link is linked to nothing else
        (client) => client.getLinkData(linkId),
        (first, route) => first.getLinkDataVia(route, parseAddress(link.relay), linkId),
      );
    } catch (e) {
      if (e instanceof RelayError && e.code === 'AUTH') {
        throw link.kind === 'invitation'
          ? new AgentError('LINK_USED', 'this invitation was already used or withdrawn', { cause: e })
          : new AgentError('ADDRESS_GONE', 'this contact address no longer exists', { cause: e });
      }
      if (e instanceof AgentError) throw e;
      throw new AgentError('RELAY_UNREACHABLE', `could not fetch the link from ${link.relay}: ${(e as Error).message}`, { cause: e });
    }
    const full = decodeLinkPayload(link.kind, openLinkData(link.linkKey, data));
    if (full.relay !== link.relay) throw new AgentError('BAD_LINK', 'the link names one relay and its data another; ask for a new link');
    return full;
  }
}
