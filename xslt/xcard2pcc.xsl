<?xml version="1.0" encoding="UTF-8"?>
<!-- The default import transform of vCard 3rd parties (CardDAV): one xCard
     card (RFC 6351; what xdmsd's vCard reader makes of a vCard) into a PCC
     with one person-details (SPEC §5.2). xdmsd validates the result against
     schemas/cab-pcc.xsd and the PCC rules before it is merged.

     Input:  <vcards><vcard> (the first card is used) or a bare <vcard>,
             namespace urn:ietf:params:xml:ns:vcard-4.0. Properties inside a
             <group> count as if they were outside it.
     Output: <pcc xmlns="urn:oma:xml:cab:pcc"> with, in this order, the field
             groups the IWF merges (the names in <fields> are in brackets):
       name       (fn n nickname) the first FN with N is one name-entry
                  (display-name, given, middle, family); every other FN and
                  every NICKNAME value is a name-entry of its own, nicknames
                  with name-type="Alias".
       comm-addr  (tel) TEL -> tel, tel-type from TYPE, number as a tel: URI;
                  (email) EMAIL -> uri-entry addr-uri-type="Email", mailto:;
                  (impp url) IMPP -> uri-entry "SIP-URI" (sip:, sips:) or
                  "IM"; URL -> uri-entry "Other" with label "url".
       address    (adr) ADR -> address-entry; addr-string is street,
                  locality, region, code and country joined by ", ";
                  LABEL -> label.
       birth      (bday) BDAY -> birth-date/date (YYYY-MM-DD) when it is a
                  full date, else non-greg-date cal-type="Other";
                  BIRTHPLACE -> place.
       career     (org title) ORG (its first component) -> employer,
                  TITLE -> duty.
       media-list (photo) PHOTO, LOGO, SOUND -> media-entry with media-url
                  (a URL or a data: URI), media-type from MEDIATYPE, the
                  data: URI or the file extension, label photo/logo/sound.
     Every other property is left out (it stays at the 3rd party).

     @pref: none when no property of a kind has a PREF; the PREF values
     when every one has a PREF and no two are the same; else the entries'
     order (1, 2, ...): a PCC needs @pref unique among entries of one kind
     (tel, uri-entry, ...). Nicknames next to names always take the order.

     What does not come back from a PCC sent out with pcc2xcard.xsl: the
     xml:lang of the comm-addr group (vCard has a LANGUAGE per property,
     none per group), <first> (read back as <given>, as SPEC §5.2 says),
     and the form of an E.164 tel-string (it comes back as a tel: URI with
     the same number).

     Parameters named x-cab-* are written by pcc2xcard.xsl for what vCard
     has no place for (name-type, tel-type, xui-type, a label, the exact
     addr-uri-type, a calendar); when present they win, so that a PCC sent
     out and read back comes back with every value. -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:v="urn:ietf:params:xml:ns:vcard-4.0"
                xmlns="urn:oma:xml:cab:pcc"
                exclude-result-prefixes="v">
  <xsl:output method="xml" encoding="UTF-8" indent="no"/>
  <xsl:strip-space elements="*"/>
  <xsl:param name="xui"/>
  <xsl:param name="remote-user"/>

  <!-- The card, and its properties whether grouped or not. -->
  <xsl:variable name="card" select="(/v:vcards/v:vcard | /v:vcard)[1]"/>
  <xsl:variable name="props" select="$card/* | $card/v:group/*"/>
  <xsl:variable name="fns" select="$props[self::v:fn]"/>
  <xsl:variable name="nicks" select="$props[self::v:nickname]/v:text[string(.) != '']"/>
  <xsl:variable name="tels" select="$props[self::v:tel]"/>
  <xsl:variable name="uris" select="$props[self::v:email or self::v:impp or self::v:url]"/>
  <xsl:variable name="adrs" select="$props[self::v:adr]"/>
  <xsl:variable name="media" select="$props[self::v:photo or self::v:logo or self::v:sound]"/>

  <xsl:template match="/">
    <xsl:if test="not($card)">
      <xsl:message terminate="yes">the 3rd party did not send an xCard vcard</xsl:message>
    </xsl:if>
    <pcc pcc-type="individual">
      <person-details>
        <xsl:call-template name="name"/>
        <xsl:call-template name="comm-addr"/>
        <xsl:call-template name="address"/>
        <xsl:call-template name="birth"/>
        <xsl:call-template name="career"/>
        <xsl:call-template name="media-list"/>
      </person-details>
    </pcc>
  </xsl:template>

  <!-- ==== helpers ==================================================== -->

  <!-- How @pref is set for the entries made of $all: 'none' when no
       property has a PREF (no @pref at all), '' when every one has a PREF
       and no two are the same (@pref is the PREF), else some 'x' (@pref is
       the position). -->
  <xsl:template name="prefs-unusable">
    <xsl:param name="all"/>
    <xsl:choose>
      <xsl:when test="not($all/v:parameters/v:pref)">none</xsl:when>
      <xsl:otherwise>
        <xsl:for-each select="$all">
          <xsl:variable name="me" select="generate-id()"/>
          <xsl:variable name="p" select="string(v:parameters/v:pref/v:integer)"/>
          <xsl:if test="$p = '' or $all[generate-id() != $me][string(v:parameters/v:pref/v:integer) = $p]">x</xsl:if>
        </xsl:for-each>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- @pref of the current property: its PREF, $position, or none. -->
  <xsl:template name="pref">
    <xsl:param name="unusable"/>
    <xsl:param name="position"/>
    <xsl:choose>
      <xsl:when test="$unusable = 'none'"/>
      <xsl:when test="$unusable = ''">
        <xsl:attribute name="pref"><xsl:value-of select="v:parameters/v:pref/v:integer"/></xsl:attribute>
      </xsl:when>
      <xsl:otherwise><xsl:attribute name="pref"><xsl:value-of select="$position"/></xsl:attribute></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- xml:lang from the LANGUAGE parameter. -->
  <xsl:template name="lang">
    <xsl:if test="v:parameters/v:language/v:language-tag != ''">
      <xsl:attribute name="xml:lang"><xsl:value-of select="v:parameters/v:language/v:language-tag"/></xsl:attribute>
    </xsl:if>
  </xsl:template>

  <!-- <label> from the x-cab-label parameter, else $default. -->
  <xsl:template name="label">
    <xsl:param name="default"/>
    <xsl:variable name="l" select="string(v:parameters/v:x-cab-label/v:text)"/>
    <xsl:choose>
      <xsl:when test="$l != ''"><label><xsl:value-of select="$l"/></label></xsl:when>
      <xsl:when test="$default != ''"><label><xsl:value-of select="$default"/></label></xsl:when>
    </xsl:choose>
  </xsl:template>

  <!-- The property's value, whatever its value type (text, uri, ...). -->
  <xsl:template name="value">
    <xsl:value-of select="normalize-space(*[not(self::v:parameters)][1])"/>
  </xsl:template>

  <!-- ==== name (fn n nickname) ======================================= -->
  <xsl:template name="name">
    <xsl:variable name="n" select="$props[self::v:n][1]"/>
    <xsl:if test="$fns or $n or $nicks">
      <xsl:variable name="unusable">
        <xsl:call-template name="prefs-unusable"><xsl:with-param name="all" select="$fns"/></xsl:call-template>
        <xsl:if test="$nicks">x</xsl:if>
      </xsl:variable>
      <name>
        <xsl:if test="not($fns) and $n">
          <!-- N without FN (vCard 3.0 allows it): one entry from N. -->
          <name-entry pref="1"><xsl:apply-templates select="$n" mode="parts"/></name-entry>
        </xsl:if>
        <xsl:for-each select="$fns">
          <name-entry>
            <xsl:call-template name="pref">
              <xsl:with-param name="unusable" select="$unusable"/>
              <xsl:with-param name="position" select="position()"/>
            </xsl:call-template>
            <xsl:if test="v:parameters/v:x-cab-name-type/v:text != ''">
              <xsl:attribute name="name-type"><xsl:value-of select="v:parameters/v:x-cab-name-type/v:text"/></xsl:attribute>
            </xsl:if>
            <xsl:call-template name="lang"/>
            <display-name><xsl:value-of select="v:text"/></display-name>
            <xsl:if test="position() = 1"><xsl:apply-templates select="$n" mode="parts"/></xsl:if>
          </name-entry>
        </xsl:for-each>
        <xsl:for-each select="$nicks">
          <name-entry name-type="Alias">
            <xsl:attribute name="pref"><xsl:value-of select="count($fns) + count($n[not($fns)]) + position()"/></xsl:attribute>
            <display-name><xsl:value-of select="."/></display-name>
          </name-entry>
        </xsl:for-each>
      </name>
    </xsl:if>
  </xsl:template>

  <xsl:template match="v:n" mode="parts">
    <xsl:for-each select="v:given[. != '']"><given><xsl:value-of select="."/></given></xsl:for-each>
    <xsl:for-each select="v:additional[. != '']"><middle><xsl:value-of select="."/></middle></xsl:for-each>
    <xsl:for-each select="v:surname[. != '']"><family><xsl:value-of select="."/></family></xsl:for-each>
  </xsl:template>

  <!-- ==== comm-addr (tel email impp url) ============================= -->
  <xsl:template name="comm-addr">
    <xsl:if test="$tels or $uris">
      <xsl:variable name="tel-unusable">
        <xsl:call-template name="prefs-unusable"><xsl:with-param name="all" select="$tels"/></xsl:call-template>
      </xsl:variable>
      <xsl:variable name="uri-unusable">
        <xsl:call-template name="prefs-unusable"><xsl:with-param name="all" select="$uris"/></xsl:call-template>
      </xsl:variable>
      <comm-addr>
        <xsl:for-each select="$tels">
          <xsl:variable name="types" select="v:parameters/v:type/v:text"/>
          <xsl:variable name="t"><xsl:call-template name="value"/></xsl:variable>
          <tel>
            <xsl:call-template name="pref">
              <xsl:with-param name="unusable" select="$tel-unusable"/>
              <xsl:with-param name="position" select="position()"/>
            </xsl:call-template>
            <xsl:attribute name="tel-type">
              <xsl:choose>
                <xsl:when test="v:parameters/v:x-cab-tel-type/v:text != ''">
                  <xsl:value-of select="v:parameters/v:x-cab-tel-type/v:text"/>
                </xsl:when>
                <xsl:when test="$types = 'cell'">Mobile</xsl:when>
                <xsl:when test="$types = 'fax'">Fax</xsl:when>
                <xsl:when test="$types = 'pager'">Other</xsl:when>
                <xsl:when test="$types = 'work'">Work</xsl:when>
                <xsl:when test="$types = 'home'">Home</xsl:when>
                <xsl:otherwise>Other</xsl:otherwise>
              </xsl:choose>
            </xsl:attribute>
            <xsl:if test="v:parameters/v:x-cab-xui-type/v:text != ''">
              <xsl:attribute name="xui-type"><xsl:value-of select="v:parameters/v:x-cab-xui-type/v:text"/></xsl:attribute>
            </xsl:if>
            <xsl:call-template name="lang"/>
            <tel-nb>
              <tel-string>
                <xsl:if test="not(starts-with($t, 'tel:'))">tel:</xsl:if>
                <!-- A tel: URI has no spaces (RFC 3966); '-', '.', '(' and ')' may stay. -->
                <xsl:value-of select="translate($t, ' ', '')"/>
              </tel-string>
            </tel-nb>
            <xsl:call-template name="label"/>
          </tel>
        </xsl:for-each>
        <xsl:for-each select="$uris">
          <xsl:variable name="u"><xsl:call-template name="value"/></xsl:variable>
          <xsl:variable name="exact" select="string(v:parameters/v:x-cab-addr-uri-type/v:text)"/>
          <uri-entry>
            <xsl:call-template name="pref">
              <xsl:with-param name="unusable" select="$uri-unusable"/>
              <xsl:with-param name="position" select="position()"/>
            </xsl:call-template>
            <xsl:attribute name="addr-uri-type">
              <xsl:choose>
                <xsl:when test="$exact != ''"><xsl:value-of select="$exact"/></xsl:when>
                <xsl:when test="self::v:email">Email</xsl:when>
                <xsl:when test="self::v:impp and (starts-with($u, 'sip:') or starts-with($u, 'sips:'))">SIP-URI</xsl:when>
                <xsl:when test="self::v:impp">IM</xsl:when>
                <xsl:otherwise>Other</xsl:otherwise>
              </xsl:choose>
            </xsl:attribute>
            <xsl:call-template name="lang"/>
            <addr-uri>
              <xsl:if test="self::v:email and not(starts-with($u, 'mailto:'))">mailto:</xsl:if>
              <xsl:value-of select="$u"/>
            </addr-uri>
            <xsl:call-template name="label">
              <xsl:with-param name="default">
                <xsl:choose>
                  <xsl:when test="self::v:url and $exact = ''">url</xsl:when>
                  <!-- EMAIL;TYPE=home: the first type that says where. -->
                  <xsl:when test="self::v:email">
                    <xsl:value-of select="v:parameters/v:type/v:text[. != 'internet' and . != 'pref' and . != 'x400'][1]"/>
                  </xsl:when>
                </xsl:choose>
              </xsl:with-param>
            </xsl:call-template>
          </uri-entry>
        </xsl:for-each>
      </comm-addr>
    </xsl:if>
  </xsl:template>

  <!-- ==== address (adr) ============================================== -->
  <xsl:template name="address">
    <xsl:if test="$adrs">
      <xsl:variable name="unusable">
        <xsl:call-template name="prefs-unusable"><xsl:with-param name="all" select="$adrs"/></xsl:call-template>
      </xsl:variable>
      <address>
        <xsl:for-each select="$adrs">
          <xsl:variable name="types" select="v:parameters/v:type/v:text"/>
          <address-entry>
            <xsl:call-template name="pref">
              <xsl:with-param name="unusable" select="$unusable"/>
              <xsl:with-param name="position" select="position()"/>
            </xsl:call-template>
            <xsl:choose>
              <xsl:when test="v:parameters/v:x-cab-address-type/v:text != ''">
                <xsl:attribute name="address-type"><xsl:value-of select="v:parameters/v:x-cab-address-type/v:text"/></xsl:attribute>
              </xsl:when>
              <xsl:when test="$types = 'home'"><xsl:attribute name="address-type">Home</xsl:attribute></xsl:when>
              <xsl:when test="$types = 'work'"><xsl:attribute name="address-type">Work</xsl:attribute></xsl:when>
            </xsl:choose>
            <xsl:call-template name="lang"/>
            <address-data>
              <addr-string>
                <xsl:for-each select="(v:street | v:locality | v:region | v:code | v:country)[normalize-space(.) != '']">
                  <xsl:if test="position() &gt; 1">, </xsl:if>
                  <xsl:value-of select="normalize-space(.)"/>
                </xsl:for-each>
              </addr-string>
            </address-data>
            <xsl:if test="v:parameters/v:label/v:text != ''">
              <label><xsl:value-of select="v:parameters/v:label/v:text"/></label>
            </xsl:if>
          </address-entry>
        </xsl:for-each>
      </address>
    </xsl:if>
  </xsl:template>

  <!-- ==== birth (bday) =============================================== -->
  <xsl:template name="birth">
    <xsl:variable name="bday" select="$props[self::v:bday][1]"/>
    <xsl:variable name="place" select="$props[self::v:birthplace][1]"/>
    <xsl:if test="$bday or $place">
      <birth>
        <xsl:for-each select="$bday">
          <xsl:variable name="d" select="normalize-space(v:date | v:date-time | v:date-and-or-time | v:text)"/>
          <!-- The calendar part: 19850412, 19850412T..., or 1985-04-12. -->
          <xsl:variable name="ymd">
            <xsl:choose>
              <xsl:when test="contains($d, 'T')"><xsl:value-of select="substring-before($d, 'T')"/></xsl:when>
              <xsl:otherwise><xsl:value-of select="$d"/></xsl:otherwise>
            </xsl:choose>
          </xsl:variable>
          <birth-date>
            <xsl:choose>
              <xsl:when test="v:parameters/v:x-cab-cal-type/v:text != ''">
                <non-greg-date cal-type="{v:parameters/v:x-cab-cal-type/v:text}"><xsl:value-of select="$d"/></non-greg-date>
              </xsl:when>
              <xsl:when test="string-length($ymd) = 8 and translate($ymd, '0123456789', '') = ''">
                <xsl:call-template name="date">
                  <xsl:with-param name="y" select="substring($ymd, 1, 4)"/>
                  <xsl:with-param name="m" select="substring($ymd, 5, 2)"/>
                  <xsl:with-param name="d" select="substring($ymd, 7, 2)"/>
                  <xsl:with-param name="raw" select="$d"/>
                </xsl:call-template>
              </xsl:when>
              <xsl:when test="string-length($ymd) = 10 and translate($ymd, '0123456789', '') = '--'
                              and substring($ymd, 5, 1) = '-'">
                <xsl:call-template name="date">
                  <xsl:with-param name="y" select="substring($ymd, 1, 4)"/>
                  <xsl:with-param name="m" select="substring($ymd, 6, 2)"/>
                  <xsl:with-param name="d" select="substring($ymd, 9, 2)"/>
                  <xsl:with-param name="raw" select="$d"/>
                </xsl:call-template>
              </xsl:when>
              <!-- No year (- -0412), or text: not a Gregorian date the schema takes. -->
              <xsl:otherwise><non-greg-date cal-type="Other"><xsl:value-of select="$d"/></non-greg-date></xsl:otherwise>
            </xsl:choose>
          </birth-date>
        </xsl:for-each>
        <xsl:for-each select="$place">
          <place><xsl:value-of select="v:text | v:uri"/></place>
        </xsl:for-each>
      </birth>
    </xsl:if>
  </xsl:template>

  <!-- <date>YYYY-MM-DD</date> when $y $m $d is a day of the Gregorian
       calendar (the schema's xs:date), else the text as non-greg-date. -->
  <xsl:template name="date">
    <xsl:param name="y"/>
    <xsl:param name="m"/>
    <xsl:param name="d"/>
    <xsl:param name="raw"/>
    <xsl:variable name="leap" select="($y mod 4 = 0 and $y mod 100 != 0) or $y mod 400 = 0"/>
    <xsl:variable name="days">
      <xsl:choose>
        <xsl:when test="$m = 2 and $leap">29</xsl:when>
        <xsl:when test="$m = 2">28</xsl:when>
        <xsl:when test="$m = 4 or $m = 6 or $m = 9 or $m = 11">30</xsl:when>
        <xsl:otherwise>31</xsl:otherwise>
      </xsl:choose>
    </xsl:variable>
    <xsl:choose>
      <xsl:when test="$y &gt;= 1 and $m &gt;= 1 and $m &lt;= 12 and $d &gt;= 1 and $d &lt;= $days">
        <date><xsl:value-of select="concat($y, '-', $m, '-', $d)"/></date>
      </xsl:when>
      <xsl:otherwise><non-greg-date cal-type="Other"><xsl:value-of select="$raw"/></non-greg-date></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- ==== career (org title) ========================================= -->
  <xsl:template name="career">
    <xsl:variable name="orgs" select="$props[self::v:org][v:text[1] != '']"/>
    <xsl:variable name="titles" select="$props[self::v:title][v:text != '']"/>
    <xsl:if test="$orgs or $titles">
      <career>
        <xsl:for-each select="$orgs"><employer><xsl:value-of select="v:text[1]"/></employer></xsl:for-each>
        <xsl:for-each select="$titles"><duty><xsl:value-of select="v:text"/></duty></xsl:for-each>
      </career>
    </xsl:if>
  </xsl:template>

  <!-- ==== media-list (photo) ========================================= -->
  <xsl:template name="media-list">
    <xsl:if test="$media">
      <xsl:variable name="unusable">
        <xsl:call-template name="prefs-unusable"><xsl:with-param name="all" select="$media"/></xsl:call-template>
      </xsl:variable>
      <media-list>
        <xsl:for-each select="$media">
          <xsl:variable name="u"><xsl:call-template name="value"/></xsl:variable>
          <xsl:variable name="lower" select="translate($u, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"/>
          <media-entry>
            <xsl:call-template name="pref">
              <xsl:with-param name="unusable" select="$unusable"/>
              <xsl:with-param name="position" select="position()"/>
            </xsl:call-template>
            <media><media-url><xsl:value-of select="$u"/></media-url></media>
            <xsl:variable name="type">
              <xsl:choose>
                <xsl:when test="v:parameters/v:mediatype/v:text != ''"><xsl:value-of select="v:parameters/v:mediatype/v:text"/></xsl:when>
                <xsl:when test="starts-with($lower, 'data:') and contains($u, ';')">
                  <xsl:value-of select="substring-before(substring($u, 6), ';')"/>
                </xsl:when>
                <xsl:when test="substring($lower, string-length($lower) - 3) = '.jpg'
                                or substring($lower, string-length($lower) - 4) = '.jpeg'">image/jpeg</xsl:when>
                <xsl:when test="substring($lower, string-length($lower) - 3) = '.png'">image/png</xsl:when>
                <xsl:when test="substring($lower, string-length($lower) - 3) = '.gif'">image/gif</xsl:when>
              </xsl:choose>
            </xsl:variable>
            <xsl:if test="$type != ''"><media-type><xsl:value-of select="$type"/></media-type></xsl:if>
            <xsl:call-template name="label">
              <xsl:with-param name="default" select="local-name()"/>
            </xsl:call-template>
          </media-entry>
        </xsl:for-each>
      </media-list>
    </xsl:if>
  </xsl:template>
</xsl:stylesheet>
