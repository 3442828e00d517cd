// Every panel of the picture, one import each: a panel module registers itself when imported.
// Keep one line per panel so that panels are added and removed independently.
import "./missions.js";
import "./tasks.js";
import "./designations.js";
import "./airdrop.js";
import "./packages.js";
import "./feeds.js";
import "./video.js";
import "./contacts.js";
import "./chat.js";
import "./emergency.js";
import "./drawing.js";
import "./replay.js";
