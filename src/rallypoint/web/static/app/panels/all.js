// Every panel of the picture, one import each: a panel module registers itself when imported.
// Keep one line per panel so that panels are added and removed independently.
import "./designations.js";
import "./airdrop.js";
import "./packages.js";
import "./feeds.js";
import "./video.js";
import "./drawing.js";
import "./missions.js";
import "./tasks.js";
import "./replay.js";
import "./contacts.js";
import "./chat.js";
import "./emergency.js";
