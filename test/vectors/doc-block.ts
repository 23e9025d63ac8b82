/**
 * The generated vectors block of a document: the text from a begin marker
 * through an end marker. Each vectors module names its own markers.
 */
export interface DocMarkers {
  readonly begin: string;
  readonly end: string;
  /** Named in the error when the markers are missing. */
  readonly docName: string;
}

/** `doc` with its marked block replaced by `block`; throws if the markers are missing. */
export function replaceMarkedBlock(doc: string, markers: DocMarkers, block: string): string {
  const begin = doc.indexOf(markers.begin);
  const end = doc.indexOf(markers.end);
  if (begin < 0 || end < begin) throw new Error(`${markers.docName} has no vectors block markers`);
  return doc.slice(0, begin) + block + doc.slice(end + markers.end.length);
}

/** The marked block currently in `doc`, or null. */
export function extractMarkedBlock(doc: string, markers: DocMarkers): string | null {
  const begin = doc.indexOf(markers.begin);
  const end = doc.indexOf(markers.end);
  return begin < 0 || end < begin ? null : doc.slice(begin, end + markers.end.length);
}
