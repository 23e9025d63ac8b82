/**
 * Link data on the client side (docs/protocol.md §9.14): the checks on what
 * a caller passes, and what a relay without version 3 answers. Short links
 * themselves (deriving the link ID, encrypting and padding the data) are
 * the agent's: here the link ID and the data are opaque bytes.
 */
import { LINK_ID_LENGTH, MAX_LINK_DATA_LENGTH } from '../protocol/commands.js';
import { ConnectionError, RelayError } from './errors.js';

/**
 * Throws RangeError unless `linkId` is LINK_ID_LENGTH bytes.
 *
 * @example
 *   checkLinkId(linkId); // before it is sent as an entityId
 */
export function checkLinkId(linkId: Uint8Array): void {
  if (linkId.length !== LINK_ID_LENGTH) throw new RangeError(`a link ID is ${LINK_ID_LENGTH} bytes, got ${linkId.length}`);
}

/**
 * Throws RangeError unless `data` is 1..MAX_LINK_DATA_LENGTH bytes: the
 * relay would refuse it (LARGE_MSG), so it is not sent.
 *
 * @example
 *   checkLinkData(paddedInvitation);
 */
export function checkLinkData(data: Uint8Array): void {
  if (data.length === 0 || data.length > MAX_LINK_DATA_LENGTH) {
    throw new RangeError(`link data must be 1..${MAX_LINK_DATA_LENGTH} bytes, got ${data.length}`);
  }
}

/**
 * Runs an LSET or LGET and turns the relay's CMD_UNKNOWN for it into
 * ConnectionError VERSION: a relay (or a connection) before version 3 does
 * not know the command, and trying again will not help.
 *
 * @example
 *   const r = await requiringLinkData(() => client.request(linkId, { type: 'LGET' }));
 */
export async function requiringLinkData<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof RelayError && e.code === 'CMD_UNKNOWN' && (e.command === 'LSET' || e.command === 'LGET')) {
      throw new ConnectionError('VERSION', e.relay, `relay does not speak link data (protocol version 3): ${e.command} unknown`);
    }
    throw e;
  }
}
