// Public API of the demo build scripts (data preparation and tokenizer builders).
export { prepareSpam, buildSpamRecords, splitSpamRecords, labelOfGroup, loadSpamAssassin, readJsonl } from './spam';
export type { PrepareSpamOptions, PrepareResult, SpamManifest, SpamRecord, SpamLabel, RawEmail } from './spam';
export { prepareSotu, splitSotu, cleanSotuText, loadSotu } from './sotu';
export type { PrepareSotuOptions, PrepareSotuResult, SotuManifest, SotuAddress } from './sotu';
export { prepareParty, buildPartyTask, splitPartyAddresses, cutPassages, splitSentences, PARTY_LABELS } from './party';
export type { PreparePartyOptions, PreparePartyResult, PartyManifest, PartyRecord, PartyLabel } from './party';
export { trainWordPiece, bertNormalize, bertPreTokenize, BERT_SPECIAL_TOKENS } from './wordpiece';
export type { WordPieceOptions, WordPieceResult } from './wordpiece';
export { trainByteLevelBpe, byteLevelPreTokenize, EOS_TOKEN } from './bytelevel';
export type { ByteLevelBpeOptions, ByteLevelBpeResult } from './bytelevel';
export { messageText, stripHeaders, htmlToText } from './mime';
export { splitOf, SPLITS } from './split';
export type { SplitName, SplitFractions } from './split';
export { writeTokenizerFiles, TOKENIZER_FILES } from './tokenizerJson';
export type { TokenizerJson, TokenizerBundle } from './tokenizerJson';
export { evaluateTokenizer, loadTokenizer } from './evaluate';
export type { TokenizerEval, HfTokenizer } from './evaluate';
