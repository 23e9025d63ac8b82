/** Errors the chat layer raises for things a user can cause; each message is one line. */

export type ChatErrorCode =
  | 'NO_PROFILE' // no profile database in the directory
  | 'PROFILE_EXISTS' // `init` on a directory that already holds a profile
  | 'WRONG_PASSPHRASE' // the passphrase does not decrypt the database
  | 'NO_PASSPHRASE' // no passphrase given and no terminal to ask for one
  | 'NOT_A_PROFILE' // the database opens but is not a Nightjar profile
  | 'BAD_PROFILE_DIR' // the directory cannot be created or used
  | 'UNKNOWN_CONTACT'
  | 'AMBIGUOUS_CONTACT'
  | 'CONTACT_NOT_READY' // the connection is still being set up, or the contact left
  | 'UNKNOWN_REQUEST'
  | 'BAD_INPUT'; // an argument is out of range (alias, timer, empty or too long text)

export class ChatError extends Error {
  override readonly name = 'ChatError';
  constructor(
    readonly code: ChatErrorCode,
    message: string,
  ) {
    super(message);
  }
}
